import Foundation
import Testing
import GraftData
import GraftKeras
import GraftNN
import GraftRecipes
import GraftTensor
import GraftTestSupport

/// Graft's tiled-convolution architecture trains from a recipe, and its checkpoint reloads (Keras has no such layer:
/// `graft export` refuses it, CLIPolishTests).
struct TiledConvolutionTrainingTests {
    @Test(.enabled(if: FileManager.default.fileExists(atPath: BuiltinDatasets.fashionMNISTDirectory + "/train-images-idx3-ubyte.gz"), "dataset-fashion-mnist is not installed"))
    func aTiledNetworkTrainsFromARecipeAndReloads() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let text = """
        seed: 4
        model:
          checkpoint: zoo:tiled?classes=3&input=28,28,1&tiles=2
        data:
          train: fashion-mnist:train
          classes: [1, 7, 8]
          limit_per_class: 100
          validation_split: 0.2
          preprocess: 1/255
          batch_size: 16
        stages:
          - {name: train, freeze: none, epochs: 3, optimizer: adam, learning_rate: 0.003}
        outputs:
          directory: \(dir.appendingPathComponent("run").path)
          formats: [h5]
        """
        let file = dir.appendingPathComponent("tiled.yaml").path
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        var recipe = try Recipe.load(file, overrides: [])
        recipe.config.showProgress = false
        let report = try RecipeRunner(recipe, graftVersion: "test").run()
        let history = try #require(report.fineTune?.history)
        #expect((history.last?.valAccuracy ?? 0) > 0.6)   // 3 classes: chance is 1/3
        #expect(report.files.contains { $0.hasSuffix("final.h5") })
        let final = URL(fileURLWithPath: report.runDirectory).appendingPathComponent("final.h5").path
        let reloaded = try KerasLoader.load(final).model
        #expect(reloaded.flattenedLayers.compactMap { $0 as? TiledConv2D }.map(\.tiles) == [[2, 2], [2, 2]])
        let x = Tensor(shape: [2, 28, 28, 1], values: (0..<1568).map { Float($0 % 13) / 13 })
        #expect(try reloaded.predict([x])[0] == (try report.fineTune!.model.predict([x])[0]))
    }
}
