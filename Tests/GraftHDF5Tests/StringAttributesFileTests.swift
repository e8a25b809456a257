import Foundation
import Testing
import GraftHDF5

/// The file in which the HDF5 checking child hands decoded string attributes to the parent.
struct StringAttributesFileTests {
    @Test func roundTripsAndRefusesDamagedBytes() {
        let values: [String: [String]] = [
            "/@model_config": [String(repeating: "{\"class_name\": \"Conv2D\"} ", count: 4000)],
            "/model_weights@layer_names": ["conv1", "bn_ü", "", "名前"],
            "/g/d@empty": [],
        ]
        let data = StringAttributesFile.encode(values)
        #expect(StringAttributesFile.decode(data) == values)
        #expect(StringAttributesFile.decode(StringAttributesFile.encode([:])) == [:])
        #expect(StringAttributesFile.decode(Data()) == nil)
        // Every cut is refused rather than read as fewer attributes or shorter lists; so are extra bytes.
        for cut in Array(0..<64) + Array(stride(from: 64, to: data.count, by: 997)) + [data.count - 1] {
            #expect(StringAttributesFile.decode(data.prefix(cut)) == nil, "cut at \(cut)")
        }
        // A count far beyond the bytes present is refused without allocating for it.
        #expect(StringAttributesFile.decode(data + [0]) == nil)
        var huge = StringAttributesFile.encode(["k": ["v"]])
        huge.replaceSubrange(9..<13, with: [0xFF, 0xFF, 0xFF, 0x7F])    // the value count of "k"
        #expect(StringAttributesFile.decode(huge) == nil)
        // Bytes that are not UTF-8 are refused.
        #expect(StringAttributesFile.decode(Data([1, 0, 0, 0, 1, 0, 0, 0, 0xFF, 0, 0, 0, 0])) == nil)
    }
}
