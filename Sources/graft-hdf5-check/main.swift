// graft-hdf5-check FILE [--strings-to PATH]: the integrity check `graft` runs in a child process before libhdf5
// opens a file (see HDF5Guard), when it cannot fork itself for it (it forks while it runs a single thread). The
// same check as the hidden `graft check-hdf5` command, in an executable that links libhdf5 and Foundation only:
// it starts in two thirds of graft's time (graft loads oneDNN, OpenBLAS, image and archive libraries).
// Exit 0: the whole file read; 1: a clean error, one line on stderr (HDF5IntegrityCheck.runAsChild); anything else:
// the file is damaged.
import ArgumentParser
import GraftHDF5

struct GraftHDF5Check: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "graft-hdf5-check",
                                                    abstract: "Read a whole HDF5 file (graft's integrity check).")

    @Argument(help: "The HDF5 file.")
    var file: String

    @Option(help: "Write the file's decoded string attributes here (StringAttributesFile).")
    var stringsTo: String?

    func run() throws {
        let status = HDF5IntegrityCheck.runAsChild(file: file, stringsTo: stringsTo)
        if status != 0 { throw ExitCode(status) }
    }
}

GraftHDF5Check.main()
