#if canImport(Glibc)
import Glibc
#endif

// prctl(2) is variadic in C, so Glibc's Swift module leaves it out; every option used here takes plain integers.
@_silgen_name("prctl")
private func prctl(_ option: Int32, _ argument2: UInt, _ argument3: UInt, _ argument4: UInt, _ argument5: UInt) -> Int32

/// Keeps the fal key out of reach of other processes of the same user: the hooks, notification commands and ffmpeg
/// this process starts, or anything else the service account runs.
///
/// Any process of the same user may read `/proc/<pid>/environ` (where `FAL_KEY` sits, for as long as the process
/// lives) and, through ptrace or `/proc/<pid>/mem`, the key in memory, unless the process is marked non-dumpable.
/// Withholding the key from a command's environment is not enough: a hook could read it from its parent. Marking
/// the process non-dumpable makes the kernel refuse both to everyone without CAP_SYS_PTRACE (root). A core dump,
/// which would hold the key too, is then not written, or readable by root only (`fs.suid_dumpable=2`). A child gets
/// the flag back with its own `exec`, so commands run as usual. A key *file* the user can read stays readable.
public enum KeyPrivacy {
    private static let getDumpable: Int32 = 3  // PR_GET_DUMPABLE
    private static let setDumpable: Int32 = 4  // PR_SET_DUMPABLE

    /// Marks this process non-dumpable; called first thing in `main`. Returns whether it is protected now (a
    /// seccomp filter may refuse the call).
    public static func protect() -> Bool {
        prctl(setDumpable, 0, 0, 0, 0) == 0 && isProtected
    }

    /// Whether this process is non-dumpable now (`kling-batch config` says so).
    public static var isProtected: Bool {
        prctl(getDumpable, 0, 0, 0, 0) == 0
    }
}
