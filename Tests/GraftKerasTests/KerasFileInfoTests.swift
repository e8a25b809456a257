import Foundation
import Testing
import GraftHDF5
import GraftKeras
import GraftTestSupport

/// `KerasFileInfo.recognize` on files written by real Keras 3 and tf-keras (tools/make_fixtures.py).
struct KerasFileInfoTests {
    struct Facts: Decodable {
        let keras_version: String
        let model_class: String
        let model_name: String
        let parameters: Int
        let weights: Int
        let layers: Int
    }

    static let facts: [String: Facts] = {
        let url = URL(fileURLWithPath: TestSupport.fixture("keras/models.json"))
        guard let data = try? Data(contentsOf: url),
              let decoded = try? JSONDecoder().decode([String: Facts].self, from: data) else { return [:] }
        return decoded
    }()

    @Test(arguments: [
        ("keras3_lenet.h5", KerasFormat.legacyFullModel),
        ("tfkeras_lenet.h5", KerasFormat.legacyFullModel),
        ("keras3_lenet.weights.h5", KerasFormat.keras3Weights),
        ("tfkeras_lenet_weights.h5", KerasFormat.legacyWeights),
    ])
    func recognisesEachFormat(_ name: String, _ format: KerasFormat) throws {
        let facts = try #require(Self.facts[name])
        let info = try #require(try KerasFileInfo.recognize(try HDF5File.open(TestSupport.fixture("keras/\(name)"))))
        #expect(info.format == format)
        #expect(info.parameterCount == facts.parameters)
        #expect(info.weightCount == facts.weights)
        #expect(info.layerCount == facts.layers)
        if format == .legacyFullModel {
            #expect(info.kerasVersion == facts.keras_version)
            #expect(info.backend == "tensorflow")
            #expect(info.modelClass == facts.model_class)
            #expect(info.modelName == facts.model_name)
            #expect(info.paragraph.contains("Keras \(facts.keras_version)"))
        } else {
            #expect(info.modelClass == nil)
        }
        #expect(info.paragraph.contains(format.rawValue))
        #expect(info.paragraph.contains(facts.parameters.formatted()))
    }

    @Test func plainHDF5IsNotKeras() throws {
        #expect(try KerasFileInfo.recognize(try HDF5File.open(TestSupport.fixture("hdf5/h5py_types.h5"))) == nil)
    }
}
