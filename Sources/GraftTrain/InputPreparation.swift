import Foundation
import GraftData
import GraftFiles
import GraftKeras
import GraftNN
import GraftTensor

/// How images are prepared for a model, decided in one place for every command: each setting comes from the
/// option the user gave, else from the checkpoint's `ModelTask` (what it was trained with), else the default (fit
/// `resize`, as Keras's `image_dataset_from_directory`; preprocessing by architecture, `1/255` otherwise).
public struct InputPreparation {
    public let preprocessor: Preprocessor
    /// One line for each given option that differs from what the checkpoint was trained with.
    public let overrides: [String]

    /// The preprocessor for `model` (its single image input) on `data` (its fixed image shape, if any).
    /// `source` names the checkpoint in errors and notes.
    public init(model: Model, task: ModelTask?, preprocess: String?, fit: ImageFit?, inputSize: [Int]?, data: [Int]?,
                source: String) throws {
        guard model.inputShapes.count == 1, let given = model.inputShapes.first, (1...4).contains(given.count) else {
            throw TrainError(file: source, "needs a model with one input: images (H, W, C), token ids (T), sequences (T, F) or clips (T, H, W, C)")
        }
        // Sequences and clips travel as images of the same size (DataSource.heldShape); their sizes must be the data's.
        let arrays = given.count != 3
        var modelInput = given
        if arrays {
            // One unknown size (the steps) is the data's sample size over the known ones.
            if let i = modelInput.firstIndex(where: { $0 < 0 }), modelInput.filter({ $0 < 0 }).count == 1, let d = data {
                let total = d.reduce(1, *), rest = modelInput.filter { $0 >= 0 }.reduce(1, *)
                if rest > 0 && total % rest == 0 { modelInput[i] = total / rest }
            }
            guard let held = DataSource.heldShape(modelInput), !modelInput.contains(where: { $0 < 0 }) else {
                throw TrainError(file: source, "its input \(Shape.describe([-1] + given)) does not fit the data")
            }
            if let d = data, d != held {
                throw TrainError(file: source, "reads \(Shape.describe([-1] + modelInput)) but the data hold samples of \(d.reduce(1, *)) values (\(Shape.describe(d)) as images); sequences are not resized")
            }
            modelInput = held
        }
        let channelsFirst = !arrays && model.readsChannelsFirstImages
        let input = channelsFirst ? [modelInput[1], modelInput[2], modelInput[0]] : modelInput
        var notes: [String] = []
        func note(_ option: String, _ given: String, _ trained: String?) {
            if let trained, trained != given { notes.append("\(option) \(given) given; \(source) was trained with \(trained)") }
        }
        if let preprocess { note("--preprocess", preprocess, task?.preprocessing) }
        if let fit { note("--fit", fit.rawValue, task?.fit) }
        if let inputSize, input[0] < 0 || input[1] < 0 {
            note("--input-size", inputSize.map(String.init).joined(separator: ","), task?.inputSize?.map(String.init).joined(separator: ","))
        }
        let modeText = preprocess ?? task?.preprocessing
        // Token ids and feature sequences are read as they are; images (and clips of them) by architecture.
        let fallback: PreprocessMode = given.count <= 2 ? .none : PreprocessMode.default(forModel: model.name)
        let mode = try modeText.map { try PreprocessMode(parsing: $0) } ?? fallback
        let fitMode = try fit ?? task?.fit.map { text in
            guard let f = ImageFit(rawValue: text) else { throw TrainError(file: source, "its task names an unknown fit \(text)") }
            return f
        } ?? .resize
        let target = try Preprocessor.targetShape(modelInput: input, size: inputSize ?? task?.inputSize, data: data, model: source)
        preprocessor = Preprocessor(targetShape: target, fit: fitMode, mode: mode, channelsFirst: channelsFirst)
        overrides = notes
    }
}

extension ModelTask {
    /// The task of a model trained on `classNames` with `preprocessor`, fine-tuned from the checkpoint at `source`
    /// (nil for a built-in architecture): its file name and SHA-256 are recorded.
    public init(classNames: [String], preprocessor: Preprocessor, preprocess: String, source: String?) throws {
        let digest = try source.map { path -> String in
            do { return try FileDigest.sha256(path) } catch { throw TrainError(file: path, (error as? FileWriteError)?.reason ?? "\(error)") }
        }
        self.init(classNames: classNames, preprocessing: preprocess, fit: preprocessor.fit.rawValue,
                  inputSize: Array(preprocessor.targetShape.prefix(2)), channels: preprocessor.targetShape.last,
                  source: source.map { ($0 as NSString).lastPathComponent }, sourceSHA256: digest)
    }
}

extension InputPreparation {
    /// Decodes every image of `source` once before any batch (`ImageSurvey`) and says what they are and what is done
    /// to them for `preprocessor`: one line, and one more when damaged images were left out (`skipBad`). Without
    /// `skipBad` a damaged image is an error naming its file. A long survey shows progress.
    public static func survey(_ source: any ImageSource, label: String, preprocessor: Preprocessor, skipBad: Bool,
                              showProgress: Bool) throws -> (source: any ImageSource, lines: [String]) {
        let bar = ProgressBar(label: "checking \(label) images", total: source.count, enabled: showProgress && source.imageShape == nil && source.count >= 2000)
        let (kept, survey) = try ImageSurvey.survey(source, skipBad: skipBad) { done, _ in bar.update(done, images: done, metrics: []) }
        var lines = ["\(label): " + survey.describe(target: preprocessor.targetShape, fit: preprocessor.fit)]
        if let first = survey.damaged.first {
            lines.append("\(label): skipped \(survey.damaged.count) damaged image\(survey.damaged.count == 1 ? "" : "s") (--skip-bad; the first: \(first.id): \(first.problem))")
        }
        return (kept, lines)
    }
}
