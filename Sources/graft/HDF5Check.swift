import ArgumentParser
import Foundation
import GraftCore
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

extension RuntimeOptions {
    /// The command line's settings: those the `GRAFT_*` variables give (`init(environment:)`), with the HDF5 check's
    /// helper chosen here: `graft-hdf5-check` beside graft, else (or with `GRAFT_HDF5_CHECK_HELPER=0`) graft's own
    /// `check-hdf5`.
    static func commandLine(_ environment: [String: String]) -> RuntimeOptions {
        var runtime = RuntimeOptions(environment: environment)
        let graft = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let helper = environment["GRAFT_HDF5_CHECK_HELPER"] != "0" ? HDF5OpenPolicy.helperBesideExecutable : nil
        runtime.hdf5.helper = helper ?? [graft, "check-hdf5"]
        return runtime
    }
}
