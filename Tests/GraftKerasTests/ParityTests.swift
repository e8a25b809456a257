import Foundation
import Testing
import GraftData
import GraftHDF5
import GraftNN
import GraftTensor
import GraftTestSupport
@testable import GraftKeras

/// Graft's outputs against Keras's, for every fixture model in every file format (tools/make_fixtures.py).
struct ParityTests {
    struct Case: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let keras_version: String
        let files: [String: String]
        let input: String
        let output: String
        let parameters: Int
        let trainable: Int
        var testDescription: String { name }
    }

    struct Index: Decodable { let cases: [Case] }

    static let cases: [Case] = {
        let url = URL(fileURLWithPath: TestSupport.fixture("parity/index.json"))
        guard let data = try? Data(contentsOf: url), let index = try? JSONDecoder().decode(Index.self, from: data) else { return [] }
        return index.cases
    }()

    static func path(_ name: String) -> String { TestSupport.fixture("parity/\(name)") }

    /// Every way to load the case: (label, model file, architecture file).
    static func loads(_ c: Case) -> [(String, String, String?)] {
        c.files.sorted { $0.key < $1.key }.compactMap { format, file in
            switch format {
            case "keras20.json": return c.files["weights-only.h5"].map { (format, path($0), path(file)) }
            case "weights.h5": return c.files["keras"].map { (format, path(file), path($0)) }
            case "weights-only.h5": return c.files["h5"].map { (format, path(file), path($0)) }
            default: return (format, path(file), nil)
            }
        }
    }

    @Test func fixtureIndexCoversBothKerasVersions() {
        #expect(Self.cases.count >= 12)
        #expect(Self.cases.contains { $0.keras_version.hasPrefix("3.") })
        #expect(Self.cases.contains { $0.keras_version.hasPrefix("2.") })
    }

    @Test(arguments: cases)
    func outputsMatchKeras(_ c: Case) throws {
        let x = try NPY.read(Self.path(c.input))
        let ref = try NPY.read(Self.path(c.output))
        let scale = max(1, ref.scalars.map(abs).max() ?? 0)
        let loads = Self.loads(c)
        #expect(loads.count >= 2)
        for (format, file, architecture) in loads {
            let loaded = try KerasLoader.load(file, architecture: architecture)
            #expect(loaded.report.isComplete, "\(format)")
            let y = try loaded.model.predict([x])[0]
            #expect(y.shape == ref.shape, "\(format)")
            let err = zip(y.scalars, ref.scalars).map { abs($0 - $1) }.max() ?? .infinity
            #expect(err <= 1e-4 * scale, "\(c.name) [\(format)]: max abs error \(err)")
            let counts = loaded.model.parameterCounts
            #expect(counts.total == c.parameters, "\(format)")
            #expect(counts.trainable == c.trainable, "\(format)")
        }
    }

    /// `loadWeights` (Keras's `model.load_weights`) fills a freshly built model from every file format of the case,
    /// and its outputs match Keras's as a full load's do.
    @Test(arguments: cases)
    func weightsLoadIntoAnExistingModel(_ c: Case) throws {
        let x = try NPY.read(Self.path(c.input))
        let ref = try NPY.read(Self.path(c.output))
        let scale = max(1, ref.scalars.map(abs).max() ?? 0)
        for (format, file, architecture) in Self.loads(c) {
            let model = try KerasLoader.loadArchitecture(architecture ?? file)
            let report = try KerasLoader.loadWeights(from: file, into: model)
            #expect(report.isComplete, "\(format)")
            let y = try model.predict([x])[0]
            let err = zip(y.scalars, ref.scalars).map { abs($0 - $1) }.max() ?? .infinity
            #expect(y.shape == ref.shape && err <= 1e-4 * scale, "\(c.name) [\(format)]: max abs error \(err)")
        }
    }

    /// Weights for another architecture are refused, naming the file.
    @Test func weightsOfAnotherModelAreRefused() throws {
        let files = Self.cases.prefix(2).compactMap { $0.files["h5"].map(Self.path) }
        try #require(files.count == 2)
        let model = try KerasLoader.loadArchitecture(files[0])
        #expect { try KerasLoader.loadWeights(from: files[1], into: model) } throws: { "\($0)".contains(files[1]) }
        #expect { try KerasLoader.loadWeights(from: "/nonexistent/w.h5", into: model) } throws: { "\($0)".contains("/nonexistent/w.h5") }
    }

    @Test func snakeCaseLikeKeras() {
        #expect(KerasWeights.snakeCase("Conv2D") == "conv2d")
        #expect(KerasWeights.snakeCase("BatchNormalization") == "batch_normalization")
        #expect(KerasWeights.snakeCase("ReLU") == "re_lu")
        #expect(KerasWeights.snakeCase("PReLU") == "p_re_lu")
        #expect(KerasWeights.snakeCase("GlobalAveragePooling2D") == "global_average_pooling2d")
        #expect(KerasWeights.snakeCase("DepthwiseConv2D") == "depthwise_conv2d")
    }
}
