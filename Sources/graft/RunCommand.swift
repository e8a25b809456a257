import ArgumentParser
import Foundation
import GraftRecipes
import GraftTrain

/// `graft run Recipes/NAME.yaml [--set key=value …]`: a whole recipe, checked before any work starts.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a YAML recipe: fine-tuning stages, exports, features, plots, baseline.",
        discussion: """
        Examples:
          graft run Recipes/quickstart.yaml
          graft run Recipes/quickstart.yaml --set seed=2 --set stages.1.epochs=5
          graft run Recipes/quickstart.yaml --check        # validate and print the resolved recipe
          graft run Recipes/quickstart.yaml --resume       # after Ctrl-C
        """)

    @Argument(help: "The recipe file.")
    var recipe: String

    @Option(name: .customLong("set"), help: "Override a recipe key, e.g. --set stages.0.epochs=1 (repeatable).")
    var overrides: [String] = []

    @Flag(name: .customLong("check"), help: "Make every check a run makes before training (data, checkpoint, layer names, classes, input size), then print the recipe resolved.")
    var checkOnly = false

    @Flag(help: "Continue the recipe's run from its newest checkpoint (interrupted.h5 or last.h5).")
    var resume = false

    @Flag(help: "Replace the run the recipe's output folder holds (its checkpoints, metrics, plots, features and reports).")
    var overwrite = false

    @Flag(help: "No progress bar or log lines on stderr.")
    var quiet = false

    func run() throws {
        var r = try Recipe.load(recipe, overrides: overrides)
        r.config.overwrite = overwrite
        if checkOnly {
            r.config.resume = resume
            try RecipeRunner(r, graftVersion: graftVersion).check()
            print(r.resolvedYAML(graftVersion: graftVersion), terminator: "")
            return
        }
        r.config.showProgress = !quiet
        r.config.resume = resume
        Interrupt.install()
        let report: RecipeReport
        do {
            report = try RecipeRunner(r, graftVersion: graftVersion).run()
        } catch let e as InterruptedError {
            FileHandle.standardError.write(Data("interrupted; \(ResumeHint.line())\n".utf8))
            throw ExitCode(128 + e.signal)
        }
        print("run directory: \(report.runDirectory)")
        for f in report.files where f.hasPrefix("features_") { print("features: \(report.runDirectory)/\(f)") }
        if let acc = report.fineTune?.testAccuracy { print(String(format: "test accuracy (fine-tuned): %.4f", acc)) }
        if let base = report.baselineAccuracy {
            print(String(format: "test accuracy (from scratch, same data): %.4f", base))
            if let acc = report.fineTune?.testAccuracy { print(String(format: "gain: %+.4f", acc - base)) }
        }
        if let sig = report.interruptedBy {
            FileHandle.standardError.write(Data("interrupted; \(ResumeHint.line())\n".utf8))
            throw ExitCode(128 + sig)
        }
        try ResumeHint.exitIfInterruptedAfterFinishing()
    }
}

/// The command that continues an interrupted run: this one, with `--resume` in place of `--overwrite`.
enum ResumeHint {
    /// A signal that came when nothing was left to stop (the test evaluation, the last export): the run's files
    /// are complete, and the exit status still says it was interrupted.
    static func exitIfInterruptedAfterFinishing() throws {
        guard let sig = Interrupt.pending else { return }
        FileHandle.standardError.write(Data("interrupted after the run had finished: its files are complete\n".utf8))
        throw ExitCode(128 + sig)
    }

    static func line(_ arguments: [String] = CommandLine.arguments) -> String {
        let kept = arguments.dropFirst().filter { $0 != "--overwrite" && $0 != "--resume" }
        func quoted(_ a: String) -> String {
            a.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=,@%+".contains($0) } && !a.isEmpty ? a : "'" + a.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }
        return "continue with: graft " + (kept.map(quoted) + ["--resume"]).joined(separator: " ")
    }
}
