import Foundation

/// How `HDF5File.open` protects the process from libhdf5 crashing or hanging on a damaged file. libhdf5 1.10 can
/// do either on some damaged files (found by `tools/fuzz`), so by default every file is read whole in a child
/// process first, within a time limit, and only a file the child read cleanly reaches libhdf5 here: a damaged
/// file is a thrown `HDF5Error`, never a crash. The child is a fork of this process while it runs one thread,
/// else the `graft-hdf5-check` helper (the package's executable product of that name).
///
/// The policy in force is `RuntimeOptions.current.hdf5`; `HDF5File.open(_:policy:)` takes one per call.
public struct HDF5OpenPolicy: Sendable, Equatable {
    /// Check each file in a child before opening it (the default), or trust every file (`unchecked`).
    public var checkInChild = true
    /// The child's time limit in seconds; nil: 20 s plus 1 s per 5 MB of file (reading runs at hundreds of MB/s).
    public var timeout: Double?
    /// Fork this process for the check while it runs a single thread (no start-up cost).
    public var fork = true
    /// The helper to spawn when no fork is possible: an executable and its leading arguments (the file and
    /// `--strings-to PATH` follow). nil: `graft-hdf5-check` beside this process's executable.
    public var helper: [String]?

    public init(checkInChild: Bool = true, timeout: Double? = nil, fork: Bool = true, helper: [String]? = nil) {
        (self.checkInChild, self.timeout, self.fork, self.helper) = (checkInChild, timeout, fork, helper)
    }

    /// Every file checked in a child: the default.
    public static let standard = HDF5OpenPolicy()
    /// No check: for files this process wrote itself or otherwise trusts (and for the check child itself).
    public static let unchecked = HDF5OpenPolicy(checkInChild: false)

    /// `graft-hdf5-check` beside this process's executable, when it is there.
    public static let helperBesideExecutable: [String]? = {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let url = exe.deletingLastPathComponent().appendingPathComponent("graft-hdf5-check")
        return FileManager.default.isExecutableFile(atPath: url.path) ? [url.path] : nil
    }()
}

