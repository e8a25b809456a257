import Foundation
import Testing
import GraftTestSupport
import GraftData
import GraftKeras
import GraftNN
import GraftTensor
import GraftTrain

/// README's "Using Graft from Swift" example runs here as written: the code between the markers is the README's
/// code block but for its first line, which names the files (here: the shipped checkpoint and a temporary output).
struct ReadmeExampleTests {
    static let sourceFile = URL(fileURLWithPath: #filePath)

    /// The lines between `// README example begins` and `// README example ends` in `text`, indentation removed.
    static func example(in text: String, indent: Int) -> [String] {
        let lines = text.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { $0.hasSuffix("// README example begins") }),
              let end = lines.firstIndex(where: { $0.hasSuffix("// README example ends") }), start < end else { return [] }
        return lines[(start + 1)..<end].map { String($0.dropFirst(min(indent, $0.prefix { $0 == " " }.count))) }
    }

    @Test func readmeShowsThisCode() throws {
        let readme = try String(contentsOf: Self.sourceFile.deletingLastPathComponent().appendingPathComponent("../../README.md"), encoding: .utf8)
        let lines = readme.components(separatedBy: "\n")
        let heading = try #require(lines.firstIndex(of: "## Using Graft from Swift"))
        let open = try #require(lines[heading...].firstIndex(of: "```swift"))
        let close = try #require(lines[(open + 1)...].firstIndex(of: "```"))
        let block = Array(lines[(open + 1)..<close])
        #expect(block.first?.hasPrefix("let checkpoint = \"pretrained/convnet-fashion.h5\"") == true)
        let code = Self.example(in: try String(contentsOf: Self.sourceFile, encoding: .utf8), indent: 8)
        #expect(code.count > 20)
        #expect(Array(block.dropFirst()) == code)
    }

    @Test func theExampleRuns() throws {
        let checkpoint = TestSupport.fixture("../../pretrained/convnet-fashion.h5")
        let output = try TestSupport.makeTemporaryDirectory().appendingPathComponent("tuned.keras").path
        // README example begins
        // Load a Keras checkpoint: a full-model .h5, a .keras archive, or weights with an architecture.
        let loaded = try KerasLoader.load(checkpoint)
        let model = loaded.model
        print(model.summary())

        // Predict on an array (NHWC float32, preprocessed as the model expects: here scaled to 0…1).
        let x = Tensor(shape: [4, 28, 28, 1], repeating: 0.5)
        let probabilities = try model.predict([x])[0]   // [4, 10]
        print(probabilities.shape)

        // Cut at the pooled features, graft a new 3-class head, freeze the base.
        let tuned = try model.cut(at: "avg_pool").replacingHead(HeadConfig(classes: 3), seed: 1)
        try tuned.freeze(.until("avg_pool"))

        // Fine-tune a few steps on arrays: images on the 0…255 scale, one class index per image.
        var rng = SplitMix64(seed: 7)
        let labels = (0..<48).map { $0 % 3 }
        let pixels = labels.flatMap { label in (0..<(28 * 28)).map { _ in Float(label * 80) + Float(rng.next() % 40) } }
        let train = ImageDataset(imageShape: [28, 28, 1], pixels: pixels, labels: labels,
                                 ids: labels.indices.map(String.init), classNames: ["dark", "mid", "light"])
        let trainer = Trainer(model: tuned, optimizer: Adam(learningRate: 0.01),
                              preprocessor: Preprocessor(targetShape: [28, 28, 1], fit: .resize, mode: .scale(1 / 255)))
        var options = FitOptions(epochs: 3, batchSize: 16)
        options.showProgress = false
        try trainer.fit(train: train, validation: nil, options: options, callbacks: [])
        let accuracy = try trainer.evaluate(train, batchSize: 16).accuracy
        print("accuracy", accuracy)

        // Save for Keras (keras.saving.load_model reads it).
        try KerasWriter.writeKerasArchive(tuned, to: output)
        // README example ends
        #expect(probabilities.shape == [4, 10])
        #expect(trainer.history.count == 3 && trainer.history.last!.loss < trainer.history.first!.loss)
        #expect(accuracy > 0.9)   // chance is 1/3; these seeds give 44 of 48
        let reloaded = try KerasLoader.load(output)
        #expect(reloaded.report.isComplete)
        #expect(try reloaded.model.predict([x])[0].scalars == tuned.predict([x])[0].scalars)
    }
}
