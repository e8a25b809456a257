import Foundation
import Testing
import GraftNN
import GraftTestSupport
@testable import GraftKeras

/// The task a checkpoint carries: written in each format, read back equal, and checked like any other input.
struct ModelTaskFileTests {
    static let task = ModelTask(classNames: ["cat", "dog", "ünïcode"], preprocessing: "1/255", fit: "resize", inputSize: [16, 16],
                                channels: 1, source: "base.h5", sourceSHA256: String(repeating: "ab", count: 32))

    @Test(arguments: ["h5", "weights.h5", "keras"])
    func roundTrip(_ format: String) throws {
        let model = try KerasLoader.load(TestSupport.fixture("keras/keras3_lenet.h5")).model
        let dir = try TestSupport.makeTemporaryDirectory("graft-task-file")
        let path = dir.appendingPathComponent("m.\(format)").path
        switch format {
        case "h5": try KerasWriter.writeLegacyH5(model, to: path, graftVersion: "test", task: Self.task)
        case "keras": try KerasWriter.writeKerasArchive(model, to: path, task: Self.task)
        default: try KerasWriter.writeKeras3Weights(model, to: path, task: Self.task)
        }
        let loaded = format == "weights.h5"
            ? try KerasLoader.load(path, architecture: TestSupport.fixture("keras/keras3_lenet.h5"))
            : try KerasLoader.load(path)
        #expect(loaded.task == Self.task)
        #expect(try KerasLoader.load(TestSupport.fixture("keras/keras3_lenet.h5")).task == nil)   // Keras's own files have none
    }

    @Test(arguments: [
        (#"{"class_names": "cat"}"#, "class_names has the wrong type"),
        (#"{"class_names": []}"#, "class_names holds 0 names"),
        (#"{"class_names": ["a", "a"]}"#, "names a class twice"),
        (#"{"class_names": ["a\u001b[2J"]}"#, "unprintable"),
        (#"{"input_size": [0, 28]}"#, "input_size must be"),
        (#"{"input_size": [1e30, 28]}"#, "not a valid task description"),
        (#"{"channels": 9}"#, "channels must be 1 to 4"),
        ("[1, 2]", "not a valid task description"),
    ])
    func hostileTasksAreRefused(_ json: String, _ words: String) {
        do {
            _ = try ModelTask.decode(json, source: "m.h5")
            Issue.record("accepted \(json)")
        } catch let e as KerasError {
            #expect(e.message.hasPrefix("m.h5: graft_task") && e.message.contains(words) && !e.message.contains("\n"), "\(e)")
        } catch {
            Issue.record("untyped \(error)")
        }
    }
}
