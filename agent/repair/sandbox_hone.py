"""Run a command with no network but its own loopback, where the system allows it.

The test runner (``runner.py``) starts pytest through this launcher:
``python -I -S sandbox_hone.py PROGRAM ARGS...``. On Linux it moves itself into a new
user namespace and a new network namespace (``unshare(CLONE_NEWUSER | CLONE_NEWNET)``;
no privileges needed where unprivileged user namespaces are enabled), maps the user's
own uid and gid to themselves (the tests see the same user), brings the namespace's
loopback interface up (tests that talk to a server of their own on 127.0.0.1 keep
working), then replaces itself with the command. A test (or a model-written patch) can
then reach no other machine and no service of this one outside the namespace.

Where that is not possible (another system, user namespaces disabled, a seccomp
policy), the command runs as it is and the launcher writes one line starting with
:data:`NOT_ISOLATED` to stderr, saying why; the runner records it as a note.
``HONE_SANDBOX_NETWORK=allow`` in the environment skips the isolation.

Python 3.8+ and the standard library only: it runs with the repository's interpreter.
"""

import os
import sys

NOT_ISOLATED = "hone-sandbox: the network is not isolated:"
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def isolate():
    """Enter new user and network namespaces with the loopback up; raises OSError."""
    import ctypes
    import fcntl
    import socket
    import struct

    uid, gid = os.getuid(), os.getgid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, "unshare: " + os.strerror(errno))
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                           ("gid_map", f"{gid} {gid} 1")):  # fmt: skip
            with open("/proc/self/" + name, "w") as f:
                f.write(text)
    except OSError as exc:  # inside, but as nobody: do not run the tests like that
        sys.stderr.write(f"hone-sandbox: cannot map the user into the namespace: {exc}\n")
        sys.exit(126)
    # The creator of a user namespace holds every capability in it until it executes
    # the command: enough to bring the new network namespace's loopback up.
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))
    finally:
        sock.close()


def main():
    argv = sys.argv[1:]
    if not argv:
        sys.stderr.write("usage: sandbox_hone.py PROGRAM [ARGS...]\n")
        return 2
    if os.environ.pop("HONE_SANDBOX_NETWORK", "") == "allow":
        pass
    elif not sys.platform.startswith("linux"):
        sys.stderr.write(f"{NOT_ISOLATED} not supported on {sys.platform}\n")
    else:
        try:
            isolate()
        except (OSError, AttributeError) as exc:
            sys.stderr.write(f"{NOT_ISOLATED} {exc}\n")
    sys.stderr.flush()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    sys.exit(main())
