// Raw system calls for the child after clone. The child shares the Node process's memory
// (CLONE_VM, as posix_spawn does), so it must not write anything but its own stack: these return
// -errno instead of setting errno (which lives in the parent thread's TLS) and take no libc locks.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace nsbox {
namespace raw {

#if defined(__x86_64__)
inline long Call(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#define NSBOX_HAVE_CLONE_VM 1
#elif defined(__aarch64__)
inline long Call(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
}
#define NSBOX_HAVE_CLONE_VM 1
#else
// Elsewhere the child gets its own copy of memory (no CLONE_VM), so libc's wrapper is safe.
inline long Call(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
  long r = syscall(n, a, b, c, d, e, f);
  return r < 0 ? -errno : r;
}
#endif

template <typename... T>
inline long Sys(long n, T... args) {
  return Call(n, ((long)(args))...);
}

[[noreturn]] inline void Exit(int code) {
  for (;;) Call(SYS_exit, code);
}

}  // namespace raw

#if NSBOX_HAVE_CLONE_VM
// clone3 that runs fn(arg) on the new stack in the child, then exit(2)s with its result.
// Returns what clone3 returns in the parent (the pid, or -errno).
extern "C" long nsbox_clone3_run(void* args, size_t size, int (*fn)(void*), void* arg);
#endif

}  // namespace nsbox
