// setns-exec NSFILE PROGRAM [ARG...]: joins the mount namespace NSFILE and execs PROGRAM.
// nsenter does the same, but this one is linked statically so that the extra exec it adds to
// crun's timings stays small (see crun-mount-namespace.ts).
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s NSFILE PROGRAM [ARG...]\n", argv[0]);
    return 125;
  }
  int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    perror(argv[1]);
    return 125;
  }
  if (setns(fd, CLONE_NEWNS) < 0) {
    perror("setns");
    return 125;
  }
  execvp(argv[2], argv + 2);
  perror(argv[2]);
  return 127;
}
