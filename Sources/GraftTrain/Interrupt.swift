import Foundation
import GraftCore
import GraftFiles
import Synchronization

private let interruptSignal = Atomic<Int32>(0)

/// SIGINT/SIGTERM handling for training: the first signal asks the loop to stop after the current batch (it saves a
/// resumable checkpoint and exits 130/143); a second one removes the temporary files being written and ends the
/// process at once.
public enum Interrupt {
    public static func install() {
        let handler: @convention(c) (Int32) -> Void = { sig in
            if interruptSignal.load(ordering: .relaxed) != 0 {
                Temporaries.removeAllNow()   // the file being written when the second signal came
                _exit(128 + sig)
            }
            interruptSignal.store(sig, ordering: .relaxed)
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
        // A parent may start us with these signals blocked (the mask is inherited): unblock them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// The signal received, if any (the training loop asks once per batch).
    public static var pending: Int32? {
        let s = interruptSignal.load(ordering: .relaxed)
        return s == 0 ? nil : s
    }

    /// A check that reports `sig` after `afterChecks` negative answers (for tests of interruption; it does not
    /// touch the process-wide state, so other training running meanwhile is unaffected).
    public static func simulated(_ sig: Int32, afterChecks: Int) -> () -> Int32? {
        let remaining = Atomic<Int>(afterChecks)
        return { remaining.subtract(1, ordering: .relaxed).newValue < 0 ? sig : nil }
    }
}

/// Work outside the training loop (feature extraction in a recipe) stopped by SIGINT/SIGTERM: the caller exits
/// 128 + `signal` with the command that resumes.
public struct InterruptedError: GraftError {
    public let signal: Int32
    public init(signal: Int32) { self.signal = signal }
    public var context: ErrorContext { ErrorContext() }
    public var description: String { "interrupted by signal \(signal)" }
}
