import ArgumentParser
import Foundation
import GraftTrain
import GraftData

/// `graft data-bench --data SOURCE --size H,W,C [--augment SPEC]`: how fast the loader decodes, fits and augments.
struct DataBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data-bench",
        abstract: "Measure the data loader alone: images/s for decode + fit + augment + preprocess.",
        discussion: """
        Example:
          graft data-bench --data photos/ --size 224,224,3 --augment flip:h,rotate:15
        """)

    @Option(help: "Data source (same syntax as fine-tune --data).")
    var data: String

    @Option(help: "Target size H,W,C.")
    var size = "224,224,3"

    @Option(help: "Augmentation spec.")
    var augment: String?

    @Option(help: "Batch size.")
    var batch = 32

    @Option(help: "Passes over the data.")
    var epochs = 1

    func run() throws {
        let dims = try OptionChecks.size(size, "--size", channels: true)
        try OptionChecks.batch(batch)
        try OptionChecks.whole(epochs, FineTuneLimits.epochs, "--epochs")
        let (source, _) = try DataSource.load(data)
        let aug = try augment.map { try Augmenter(spec: $0) }
        let pre = Preprocessor(targetShape: dims, fit: .resize, mode: .tf)
        let start = Date()
        var images = 0
        for epoch in 0..<epochs {
            let loader = BatchLoader(source: source, batches: epochBatches(count: source.count, batchSize: batch, shuffle: true, seed: UInt64(epoch)),
                                     preprocessor: pre, augmenter: aug, seed: UInt64(epoch))
            while let b = try loader.next() { images += b.labels.count }
        }
        let seconds = Date().timeIntervalSince(start)
        print(String(format: "%d images in %.2f s: %.1f images/s (%@, %d workers%@)", images, seconds, Double(images) / seconds,
                     size, ProcessInfo.processInfo.activeProcessorCount, augment.map { ", augment \($0)" } ?? ""))
    }
}
