/*
 * A stand-in for AWS's enclave init (aws-nitro-enclaves-sdk-bootstrap, init/init.c), following its
 * documented contract, so an EIF's ramdisks can be booted in QEMU with a Debian kernel:
 *   mount devtmpfs on /dev and use /dev/console; load /nsm.ko if present (a stand-in module is
 *   allowed to fail: reported, not fatal) and delete it; read /env and /cmd line by line and delete
 *   them; bind-mount /rootfs, move it to / and chroot; mount proc, sysfs, /dev, /run, /tmp,
 *   /dev/shm, /dev/pts; put the env, then PATH=/sbin:/usr/sbin:/bin:/usr/bin; fork and exec the
 *   command with cwd /; reap; when the command exits, print its status and reboot.
 * One deviation, said out loud: it brings `lo` up (on Nitro the inner's bootstrap does that), and
 * it sends no heartbeat to vsock CID 3 (there is no parent here).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void fail(const char *what) {
  fprintf(stderr, "test-init: %s: %s\n", what, strerror(errno));
  sync();
  reboot(RB_AUTOBOOT);
  _exit(1);
}

static char **read_lines(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  size_t cap = 16, n = 0;
  char **out = calloc(cap, sizeof *out);
  char *line = NULL;
  size_t len = 0;
  ssize_t got;
  while ((got = getline(&line, &len, f)) >= 0) {
    if (got > 0 && line[got - 1] == '\n') line[got - 1] = '\0';
    if (n + 2 > cap) out = realloc(out, (cap *= 2) * sizeof *out);
    out[n++] = strdup(line);
  }
  out[n] = NULL;
  fclose(f);
  unlink(path);
  return out;
}

static void mount_at(const char *source, const char *target, const char *type, unsigned long flags) {
  mkdir(target, 0755);
  if (mount(source, target, type, flags, NULL) != 0 && errno != EBUSY) fail(target);
}

static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0) fail("lo flags");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) fail("lo up");
  close(s);
}

int main(void) {
  mount_at("dev", "/dev", "devtmpfs", MS_NOSUID);
  int console = open("/dev/console", O_RDWR);
  if (console >= 0) { dup2(console, 0); dup2(console, 1); dup2(console, 2); }
  printf("test-init: started\n");
  int module = open("/nsm.ko", O_RDONLY);
  if (module >= 0) {
    if (syscall(SYS_finit_module, module, "", 0) != 0) printf("test-init: nsm.ko not loaded (%s); a stand-in, going on\n", strerror(errno));
    close(module);
    unlink("/nsm.ko");
  }
  char **env = read_lines("/env");
  char **cmd = read_lines("/cmd");
  if (!cmd || !cmd[0]) { errno = ENOENT; fail("/cmd"); }
  if (mount("/rootfs", "/rootfs", NULL, MS_BIND | MS_REC, NULL) != 0) fail("bind /rootfs");
  if (chdir("/rootfs") != 0) fail("chdir /rootfs");
  if (mount(".", "/", NULL, MS_MOVE, NULL) != 0) fail("move /rootfs to /");
  if (chroot(".") != 0) fail("chroot");
  if (chdir("/") != 0) fail("chdir /");
  mount_at("proc", "/proc", "proc", MS_NODEV | MS_NOSUID | MS_NOEXEC);
  mount_at("run", "/run", "tmpfs", MS_NODEV | MS_NOSUID | MS_NOEXEC);
  mount_at("tmp", "/tmp", "tmpfs", MS_NODEV | MS_NOSUID);
  mount_at("dev", "/dev", "devtmpfs", MS_NOSUID);
  mount_at("shm", "/dev/shm", "tmpfs", MS_NODEV | MS_NOSUID);
  mount_at("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC);
  mount_at("sysfs", "/sys", "sysfs", MS_NODEV | MS_NOSUID | MS_NOEXEC);
  loopback_up();
  for (char **e = env; e && *e; e++) putenv(*e);
  putenv("PATH=/sbin:/usr/sbin:/bin:/usr/bin");
  pid_t child = fork();
  if (child < 0) fail("fork");
  if (child == 0) {
    setsid();
    execvpe(cmd[0], cmd, environ);
    fail(cmd[0]);
  }
  int status = 0;
  for (;;) {
    pid_t done = wait(&status);
    if (done == child || (done < 0 && errno == ECHILD)) break;
  }
  printf("test-init: command exited, status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  fflush(stdout);
  sync();
  reboot(RB_AUTOBOOT);
  return 0;
}
