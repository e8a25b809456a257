// graft-hdf5-check FILE [--strings-to PATH]: the integrity check `graft` runs in a child process before libhdf5
// opens a file (see HDF5Guard). The same check as the hidden `graft check-hdf5` command, in an executable that
// links libhdf5 and Foundation only: it starts in a third of graft's time (graft loads oneDNN, OpenBLAS, image and
// archive libraries), and every `.h5` load waits for it.
// Exit 0: the whole file read; 1: a clean error, one line "Error: …" on stderr; anything else: the file is damaged.
import Foundation
import GraftHDF5

let arguments = Array(CommandLine.arguments.dropFirst())
var file: String?
var stringsTo: String?
var i = 0
var usage = false
while i < arguments.count {
    if arguments[i] == "--strings-to", i + 1 < arguments.count {
        stringsTo = arguments[i + 1]
        i += 2
    } else if file == nil, !arguments[i].hasPrefix("-") {
        file = arguments[i]
        i += 1
    } else {
        usage = true
        break
    }
}
guard let file, !usage else {
    FileHandle.standardError.write(Data("Error: usage: graft-hdf5-check FILE [--strings-to PATH]\n".utf8))
    exit(1)
}
do {
    try HDF5IntegrityCheck.run(file: file, stringsTo: stringsTo)
} catch {
    let line = String(describing: error).map { $0.isNewline ? " " : $0 }
    FileHandle.standardError.write(Data("Error: \(String(line))\n".utf8))
    exit(1)
}
