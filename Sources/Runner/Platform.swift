// kling-batch is a Linux service: the drop folder is watched with inotify, systemd is told with sd_notify, a spec
// is read race-free through /proc/self/fd, and logs are written with Glibc's write(2). None of that has a fallback
// for other systems, so a build elsewhere stops here with the reason rather than deep inside one of those files.
#if !os(Linux)
#error("kling-batch builds and runs on Linux only (inotify, sd_notify, /proc/self/fd, Glibc)")
#endif
