// The clone3 trampoline: the child starts on the stack given in clone_args, so it cannot return
// into C++ code; it calls fn(arg) and exits with the result.
#include "raw-syscall.h"

#if defined(__x86_64__)
__asm__(
    ".text\n"
    ".globl nsbox_clone3_run\n"
    ".type nsbox_clone3_run,@function\n"
    "nsbox_clone3_run:\n"
    "  mov %rdx, %r8\n"          // fn (r8/r9 survive the syscall in both processes)
    "  mov %rcx, %r9\n"          // arg
    "  mov $435, %eax\n"         // SYS_clone3
    "  syscall\n"
    "  test %rax, %rax\n"
    "  jnz 1f\n"
    "  xor %ebp, %ebp\n"
    "  and $-16, %rsp\n"
    "  mov %r9, %rdi\n"
    "  call *%r8\n"
    "  mov %eax, %edi\n"
    "  mov $60, %eax\n"          // SYS_exit
    "  syscall\n"
    "  hlt\n"
    "1:\n"
    "  ret\n"
    ".size nsbox_clone3_run, .-nsbox_clone3_run\n"
    ".section .note.GNU-stack,\"\",@progbits\n"
    ".text\n");
#elif defined(__aarch64__)
__asm__(
    ".text\n"
    ".globl nsbox_clone3_run\n"
    ".type nsbox_clone3_run,%function\n"
    "nsbox_clone3_run:\n"
    "  mov x9, x2\n"
    "  mov x10, x3\n"
    "  mov x8, #435\n"
    "  svc #0\n"
    "  cbnz x0, 1f\n"
    "  mov x0, x10\n"
    "  blr x9\n"
    "  mov x8, #93\n"
    "  svc #0\n"
    "  brk #0\n"
    "1:\n"
    "  ret\n"
    ".size nsbox_clone3_run, .-nsbox_clone3_run\n"
    ".section .note.GNU-stack,\"\",%progbits\n"
    ".text\n");
#endif
