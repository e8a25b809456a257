import ArgumentParser
import Foundation
import GraftCore
import GraftData
import GraftFiles
import GraftHDF5
import GraftKeras
import GraftNN
import GraftRecipes
import GraftTensor
import GraftTrain

/// The `graft` command line: parsing and printing only; the work lives in the libraries.
///
/// Exit codes: 0 success; 1 a user error (bad file, data, recipe, option — one line on stderr naming it);
/// 2 an internal error; 130/143 interrupted by SIGINT/SIGTERM after writing a resumable checkpoint.
@main
struct Graft: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graft",
        abstract: "Transfer learning for convolutional networks, from and back to Keras checkpoints.",
        discussion: """
        Examples:
          graft inspect model.h5
          graft summary model.keras --json
          graft predict model.h5 --input x.npy --output y.npy --layer block5_pool
          graft fine-tune model.h5 --data photos/ --val-split 0.1 --epochs 5 --unfreeze from:block5_conv1 --out runs/photos
          graft run Recipes/quickstart.yaml --set stages.0.epochs=3
          graft extract runs/photos/final.h5 --layer head_pool --data photos/ --output features.npz
          graft export runs/photos/final.h5 --output model.keras

        Exit codes: 0 success, 1 user error (one line naming the file, layer, tensor, recipe key or option),
        2 internal error, 130/143 interrupted (a resumable checkpoint was written; continue with --resume).
        """,
        version: graftVersion,
        subcommands: [Inspect.self, Summary.self, Predict.self, ZooCommand.self, FineTune.self, Evaluate.self, Extract.self,
                      Export.self, Run.self, Bench.self, DataBench.self, CheckHDF5.self]
    )

    /// oneDNN runs its convolutions on OpenMP threads (libgomp), which by default spin for a while after each call
    /// and then fight Graft's own workers for the cores (ResNet50 inference: 15 images/s spinning, 20 passive).
    /// OpenBLAS likewise starts a thread per core when it is loaded, each spinning on `sched_yield` for a while
    /// before sleeping, though Graft runs OpenBLAS single-threaded (`Parallel.configureBLAS`). Both read these
    /// settings once, when they are loaded, which is at Graft's first convolution or matrix product
    /// (CGraftLibraries), so setting them here, while graft runs one thread, is early enough; values already in the
    /// environment are kept.
    static func configureOpenMP(threads: Int?) {
        setenv("OMP_WAIT_POLICY", "PASSIVE", 0)
        setenv("OPENBLAS_NUM_THREADS", "1", 0)
        if let threads { setenv("OMP_NUM_THREADS", String(threads), 0) }
    }

    /// Parses, runs, and maps every outcome to the documented exit codes with one-line messages.
    static func main() {
        // The library reads no environment: the command line's GRAFT_* variables become its settings here, once.
        var runtime = RuntimeOptions.commandLine(ProcessInfo.processInfo.environment)
        configureOpenMP(threads: runtime.threads)
        // A signal removes the temporary file being written (training commands replace SIGINT/SIGTERM's handler
        // with `Interrupt`'s, which saves a checkpoint first).
        Temporaries.removeOnSignals()
        // `graft finetune`: a mistyped command gets the one it is closest to.
        let commands = configuration.subcommands.map { $0.configuration.commandName ?? String(describing: $0).lowercased() }
        if let word = CommandLine.arguments.dropFirst().first, !word.hasPrefix("-"), !commands.contains(word), word != "help" {
            let hint = Suggestions.didYouMean(word, among: commands)
            FileHandle.standardError.write(Data("Error: unknown command '\(String(word.prefix(64)).filter { !$0.isNewline })'\(hint) (commands: \(commands.joined(separator: ", ")))\n".utf8))
            Foundation.exit(1)
        }
        do {
            var command = try parseAsRoot()
            if command is CheckHDF5 { runtime.hdf5 = .unchecked }   // the check itself reads its file unchecked
            RuntimeOptions.apply(runtime)
            try command.run()
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))   // --help, --version
                Foundation.exit(0)
            }
            let message = fullMessage(for: error)
            let firstLines = message.split(separator: "\n", omittingEmptySubsequences: true)
            // ArgumentParser's own errors (a bad flag or value, a failed validation) are usage: their first line.
            let isUsage = code == .validationFailure
            let line = isUsage ? (firstLines.first.map(String.init) ?? message) : message.replacingOccurrences(of: "\n", with: " ")
            // One line, whatever the file held: names read from damaged files may carry control characters.
            let raw = line.hasPrefix("Error: ") ? String(line.dropFirst(7)) : line
            let text = String(raw.map { $0.isNewline || $0.unicodeScalars.contains { $0.properties.generalCategory == .control } ? "?" : $0 })
            if isUsage || isUserError(error) {
                FileHandle.standardError.write(Data("Error: \(text)\n".utf8))
                Foundation.exit(1)
            }
            FileHandle.standardError.write(Data("Internal error: \(text)\n".utf8))
            Foundation.exit(2)
        }
    }
}

/// Errors that describe bad input or options (exit 1): Graft's own by their origin (`GraftError`), and what
/// Foundation throws reading a file the user named; anything else is an internal error (exit 2).
func isUserError(_ error: Error) -> Bool {
    if let graft = error as? GraftError { return graft.origin == .input }
    return error is CocoaError
}

/// The Graft release this binary was built from.
let graftVersion = "0.1.0-dev"
