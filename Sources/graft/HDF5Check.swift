import ArgumentParser
import Foundation
import GraftHDF5
import GraftTensor

/// Hidden: `graft check-hdf5 FILE` reads every group, attribute and dataset of a file. The command line runs it in
/// a child process before opening a file, so a libhdf5 crash or hang on a damaged file cannot take `graft` down.
struct CheckHDF5: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-hdf5", abstract: "Read a whole HDF5 file (internal).",
                                                    shouldDisplay: false)

    @Argument var file: String

    @Option(help: "Write the file's decoded string attributes here (see StringAttributesFile).")
    var stringsTo: String?

    func run() throws {
        let status = HDF5IntegrityCheck.runAsChild(file: file, stringsTo: stringsTo)
        if status != 0 { throw ExitCode(status) }
    }
}

extension HDF5OpenPolicy {
    /// The command line's policy: the standard check, with `GRAFT_HDF5_CHECK_TIMEOUT` (seconds),
    /// `GRAFT_HDF5_CHECK_FORK=0` (never fork) and `GRAFT_HDF5_CHECK_HELPER=0` (no `graft-hdf5-check`: graft
    /// runs its own `check-hdf5`) from the environment, and graft itself as the helper when `graft-hdf5-check` is
    /// not beside it.
    static func commandLine(_ environment: [String: String]) -> HDF5OpenPolicy {
        var policy = HDF5OpenPolicy.standard
        if let t = environment["GRAFT_HDF5_CHECK_TIMEOUT"].flatMap(Double.init), t.isFinite, t > 0 { policy.timeout = min(t, 86_400) }
        policy.fork = environment["GRAFT_HDF5_CHECK_FORK"] != "0"
        policy.readThreads = RuntimeOptions(environment: environment).threads
        let graft = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let helper = environment["GRAFT_HDF5_CHECK_HELPER"] != "0" ? HDF5OpenPolicy.helperBesideExecutable : nil
        policy.helper = helper ?? [graft, "check-hdf5"]
        return policy
    }
}
