import Foundation
import KlingCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// Linux calls that Glibc's Swift module leaves out (they need _GNU_SOURCE); plain ints and pointers.
@_silgen_name("pidfd_open")
private func pidfdOpen(_ pid: pid_t, _ flags: UInt32) -> Int32
@_silgen_name("pipe2")
private func pipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
private func posix_spawn_file_actions_addclosefrom_np(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32

/// A program started with posix_spawn in a process group of its own and watched through a pidfd, because
/// Foundation's `Process` learns of an exit only when every process holding its pipes has gone: a hook that leaves
/// `curl … &` behind looked hung until its timeout, and the timeout signalled the child but not what it left.
/// Here the exit is seen the moment the child exits, and `signal` reaches the whole group.
final class SpawnedChild: Sendable {
    let pid: pid_t
    /// Rung once, when the child has exited and been reaped.
    let exited = Doorbell()
    private let state = Mutex(State())
    /// What the watcher knows. `reaped` and the signalling share the lock, so a signal never reaches a process
    /// group id the kernel may have handed to someone else.
    private struct State {
        var output: [UInt8] = []
        var reaped = false
        var finished = false
        var status: Int32?
    }
    /// The most output kept: the last lines are all anyone reads.
    static let keptBytes = 65_536

    /// Why a program could not be started.
    struct StartError: Error, CustomStringConvertible {
        let description: String
    }

    private init(pid: pid_t) { self.pid = pid }

    /// Starts `path` with `arguments` (argv[0] is the path) and exactly `environment`; `stdin` is written to it,
    /// and its stdout and stderr are collected together. Only fds 0–2 are passed on: never the store, a socket or
    /// a pipe of another child.
    static func start(_ path: String, arguments: [String], environment: [String: String], stdin: [UInt8]) throws -> SpawnedChild {
        var input: [Int32] = [-1, -1]
        var output: [Int32] = [-1, -1]
        guard pipe2(&input, O_CLOEXEC) == 0 else { throw StartError(description: "pipe: \(String(cString: strerror(errno)))") }
        guard pipe2(&output, O_CLOEXEC) == 0 else {
            close(input[0]); close(input[1])
            throw StartError(description: "pipe: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, output[1], 2)
        _ = posix_spawn_file_actions_addclosefrom_np(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group (so a signal reaches what it starts), default signal handling, nothing blocked.
        var none = sigset_t()
        sigemptyset(&none)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        close(input[0])
        close(output[1])
        guard spawned == 0 else {
            close(input[1]); close(output[0])
            throw StartError(description: "\(path): \(String(cString: strerror(spawned)))")
        }
        _ = ignoreSIGPIPE
        let child = SpawnedChild(pid: pid)
        let (outputFD, inputFD) = (output[0], input[1])
        let thread = Thread { child.watch(output: outputFD, input: inputFD, stdin: stdin) }
        thread.name = "kb-child-\(pid)"
        thread.start()
        return child
    }

    /// A write to a child that closed its stdin must be an error to handle, not the end of the runner (NIO
    /// ignores SIGPIPE only once it opens its first socket). Children get the default back (`SETSIGDEF`).
    private static let ignoreSIGPIPE: Void = { _ = Glibc.signal(SIGPIPE, SIG_IGN) }()

    /// Whether it has exited, been reaped and its output read to the end of what it left.
    var finished: Bool { state.withLock { $0.finished } }

    /// Its exit status once finished (128 + the signal when a signal ended it); nil while it runs, or when the
    /// status could not be read.
    var status: Int32? { state.withLock { $0.status } }

    /// What it printed (at most the last `keptBytes`).
    var output: [UInt8] { state.withLock { $0.output } }

    /// Sends `signal` to its process group: the child and anything it started that stayed in the group.
    func signal(_ signal: Int32) {
        state.withLock { state in
            // Until it is reaped, the child (a zombie at worst) keeps its group id from being reused.
            if !state.reaped { kill(-pid, signal) }
        }
    }

    /// On its own thread: feeds stdin, collects output, and reaps the child the moment its pidfd says it exited.
    /// Output a background grandchild writes later is not waited for.
    private func watch(output: Int32, input: Int32, stdin: [UInt8]) {
        let exitFD = pidfdOpen(pid, 0)  // -1 on a kernel without pidfds: then it looks every 100 ms instead
        var (output, input, written) = (output, input, 0)
        let outputFD = output
        for fd in [output, input] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        var raw: Int32 = 0
        while true {
            if input >= 0, written >= stdin.count {
                close(input)
                input = -1
            }
            var fds = [pollfd(fd: output, events: Int16(POLLIN), revents: 0), pollfd(fd: exitFD, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: input, events: Int16(POLLOUT), revents: 0)]
            _ = poll(&fds, nfds_t(fds.count), exitFD >= 0 ? -1 : 100)
            // At the pipe's end (every writer closed it) it is no longer watched, or poll would return at once forever.
            if fds[0].revents != 0, !readAvailable(output) { output = -1 }
            if input >= 0, fds[2].revents != 0 {
                let count = stdin.withUnsafeBytes { write(input, $0.baseAddress! + written, stdin.count - written) }
                // A child that closed its stdin gets no more of it.
                if count > 0 { written += count } else if errno != EAGAIN { written = stdin.count }
            }
            if exitFD >= 0 && fds[1].revents == 0 { continue }
            let reaped = state.withLock { state -> Bool in
                let answer = waitpid(pid, &raw, exitFD >= 0 ? 0 : WNOHANG)
                if answer < 0 && errno == EINTR { return false }
                if answer < 0 { raw = -1 }
                state.reaped = answer == pid || answer < 0
                return state.reaped
            }
            if reaped { break }
        }
        if input >= 0 { close(input) }
        _ = readAvailable(outputFD)
        close(outputFD)
        if exitFD >= 0 { close(exitFD) }
        let signalled = raw & 0x7F
        state.withLock { state in
            state.status = raw < 0 ? nil : signalled == 0 ? (raw >> 8) & 0xFF : 128 + signalled
            state.finished = true
        }
        exited.ring()
    }

    /// Reads what the (non-blocking) pipe holds now into the kept output; false at its end.
    private func readAvailable(_ fd: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count == 0 { return false }
            if count < 0 { return errno == EAGAIN || errno == EINTR }
            state.withLock { state in
                state.output += buffer[0..<count]
                if state.output.count > Self.keptBytes { state.output.removeFirst(state.output.count - Self.keptBytes) }
            }
        }
    }
}
