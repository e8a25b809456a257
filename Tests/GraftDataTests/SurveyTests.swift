import Foundation
import Testing
import GraftTensor
import GraftTestSupport
@testable import GraftData

/// The survey before the first batch: damage found in every image, sizes, channels and what the fit does, counted.
struct SurveyTests {
    static func path(_ n: String) -> String { TestSupport.fixture("images/\(n)") }

    /// A JPEG whose data stops part-way decodes with a libjpeg-turbo warning: that is damage, not an image.
    @Test func aJPEGCutShortIsDamaged() throws {
        for check in [true, false] {
            do {
                if check { _ = try ImageDecoder.check(file: Self.path("cut_short.jpg")) } else { _ = try ImageDecoder.decode(file: Self.path("cut_short.jpg")) }
                Issue.record("cut_short.jpg accepted (check: \(check))")
            } catch let e as DataError {
                #expect(e.description.hasPrefix(Self.path("cut_short.jpg")) && e.description.contains("damaged JPEG"), "\(e)")
                #expect(e.description.lowercased().contains("premature end"), "\(e)")
            }
        }
        // The check reads the whole file at 1/8 scale but gives the full size, as decoding does.
        #expect(try ImageDecoder.check(file: Self.path("rgb.jpg")) == ImageDecoder.decode(file: Self.path("rgb.jpg")).shape)
        #expect(try ImageDecoder.check(file: Self.path("gray.jpg")) == [6, 8, 1])
    }

    /// A folder of mixed images: the damaged one is an error naming it, or left out and counted with `skipBad`.
    @Test func damagedImagesAreFoundBeforeAnyBatch() throws {
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("graft-survey-\(UUID().uuidString)").path
        defer { try? fm.removeItem(atPath: dir) }
        try fm.createDirectory(atPath: "\(dir)/a", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(dir)/b", withIntermediateDirectories: true)
        for (name, to) in [("rgb.png", "a/1.png"), ("gray.png", "a/2.png"), ("rgba.png", "b/1.png"), ("rgb.jpg", "b/2.jpg"),
                           ("cut_short.jpg", "b/3.jpg")] {
            try fm.copyItem(atPath: Self.path(name), toPath: "\(dir)/\(to)")
        }
        let (source, skipped) = try DataSource.load(dir)
        #expect(skipped == 0 && source.count == 5)   // the file's first bytes are a JPEG's
        do {
            _ = try ImageSurvey.survey(source, skipBad: false)
            Issue.record("the damaged image passed the survey")
        } catch let e as DataError {
            #expect(e.source == "\(dir)/b/3.jpg", "\(e)")
        }
        let (kept, survey) = try ImageSurvey.survey(source, skipBad: true)
        #expect(kept.count == 4 && kept.ids == ["\(dir)/a/1.png", "\(dir)/a/2.png", "\(dir)/b/1.png", "\(dir)/b/2.jpg"])
        #expect(kept.labels == [0, 0, 1, 1])
        #expect(survey.damaged.map(\.id) == ["\(dir)/b/3.jpg"])
        #expect(survey.shapes == [[6, 8, 3], [6, 8, 1], [6, 8, 4], [16, 16, 3]])
        // Into a gray 28×28 input with the default fit, every conversion is counted.
        let text = survey.describe(target: [28, 28, 1], fit: .resize)
        #expect(text == "4 images of 6×8 to 16×16, gray 1, RGB 2, RGBA 1; for the 28×28×1 input: RGB → gray by luma (2), RGBA → gray by luma (1), resized, 3 of them stretched to the input's aspect ratio (fit resize)", "\(text)")
        // fit pad says what it crops and what it pads.
        let padded = survey.describe(target: [8, 8, 3], fit: .pad)
        #expect(padded == "4 images of 6×8 to 16×16, gray 1, RGB 2, RGBA 1; for the 8×8×3 input: gray → RGB (1), alpha dropped (1), 1 centre-cropped to 8×8, 3 padded with zeros to 8×8 (fit pad)", "\(padded)")
        #expect(survey.describe(target: [16, 16, 3], fit: .crop).contains("3 resized, 3 of them first centre-cropped to the input's aspect ratio"), "\(survey.describe(target: [16, 16, 3], fit: .crop))")
    }

    /// In-memory data has one known shape: nothing is decoded, and same-size images are used as they are.
    @Test func inMemoryData() throws {
        let (d, _) = try DataSource.load(Self.path("small.npz"))
        let (kept, survey) = try ImageSurvey.survey(d, skipBad: false)
        #expect(kept.count == 4 && survey.damaged.isEmpty)
        #expect(survey.describe(target: [5, 5, 3], fit: .resize) == "4 images of 5×5, RGB; for the 5×5×3 input: used as they are (fit resize)")
    }
}
