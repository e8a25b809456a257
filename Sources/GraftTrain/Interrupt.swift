import Foundation
import Synchronization

private let interruptSignal = Atomic<Int32>(0)

/// SIGINT/SIGTERM handling for training: the first signal asks the loop to stop after the current batch (it saves a
/// resumable checkpoint and exits 130/143); a second one ends the process at once.
public enum Interrupt {
    public static func install() {
        let handler: @convention(c) (Int32) -> Void = { sig in
            if interruptSignal.load(ordering: .relaxed) != 0 { _exit(128 + sig) }
            interruptSignal.store(sig, ordering: .relaxed)
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
    }

    /// The signal received, if any.
    public static var pending: Int32? {
        let s = interruptSignal.load(ordering: .relaxed)
        return s == 0 ? nil : s
    }

    /// For tests: behave as if `sig` had arrived, or clear it with 0.
    public static func simulate(_ sig: Int32) {
        interruptSignal.store(sig, ordering: .relaxed)
    }
}
