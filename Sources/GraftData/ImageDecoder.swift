import CImage
import Foundation

/// Decodes PNG (libpng's simplified API) and JPEG (TurboJPEG) files into pixel values on the 0…255 scale,
/// keeping the file's channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA). 16-bit PNGs are scaled by 1/257.
/// A file the decoder warns about (a JPEG cut short, corrupt entropy data) is damaged: an error, never an
/// image with its missing part filled in grey.
public enum ImageDecoder {
    /// The largest image accepted (pixels), so a hostile header cannot make us allocate gigabytes.
    public static let maxPixels = 64 << 20

    public static func decode(file path: String) throws -> (pixels: [Float], shape: [Int]) {
        try decode([UInt8](try DataFile.read(path, limit: 1 << 30)), name: path)
    }

    /// Decodes the whole file as `decode` would and returns its shape `[H, W, C]`, faster: a JPEG is decoded at
    /// 1/8 scale, which still reads every block of its entropy-coded data (so damage anywhere is found).
    public static func check(file path: String) throws -> [Int] {
        let bytes = [UInt8](try DataFile.read(path, limit: 1 << 30))
        if isJPEG(bytes) { return try decodeJPEG(bytes, name: path, eighth: true).shape }
        return try decode(bytes, name: path).shape
    }

    static func isJPEG(_ bytes: [UInt8]) -> Bool { bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF }

    public static func decode(_ bytes: [UInt8], name: String) throws -> (pixels: [Float], shape: [Int]) {
        if bytes.count >= 8 && bytes[0] == 0x89 && bytes[1] == 0x50 && bytes[2] == 0x4E && bytes[3] == 0x47 {
            return try decodePNG(bytes, name: name)
        }
        if isJPEG(bytes) { return try decodeJPEG(bytes, name: name) }
        throw DataError(name, "not a PNG or JPEG image")
    }

    static func decodePNG(_ bytes: [UInt8], name: String) throws -> (pixels: [Float], shape: [Int]) {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        let begun = bytes.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        defer { png_image_free(&image) }
        guard begun != 0 else { throw DataError(name, "corrupt PNG (\(pngMessage(&image)))") }
        let width = Int(image.width), height = Int(image.height)
        guard width > 0, height > 0, width * height <= maxPixels else {
            throw DataError(name, "PNG of \(width)×\(height) pixels is empty or too large")
        }
        let sixteen = image.format & UInt32(PNG_FORMAT_FLAG_LINEAR) != 0
        // Keep the file's colour and alpha; expand palettes; 16-bit files stay 16-bit (no gamma conversion).
        image.format = image.format & UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA | PNG_FORMAT_FLAG_LINEAR)
        let channels = (image.format & UInt32(PNG_FORMAT_FLAG_COLOR) != 0 ? 3 : 1) + (image.format & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0 ? 1 : 0)
        let count = width * height * channels
        var pixels = [Float](repeating: 0, count: count)
        if sixteen {
            var buffer = [UInt16](repeating: 0, count: count)
            let ok = buffer.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
            guard ok != 0 else { throw DataError(name, "corrupt PNG (\(pngMessage(&image)))") }
            for i in 0..<count { pixels[i] = Float(buffer[i]) / 257 }
        } else {
            var buffer = [UInt8](repeating: 0, count: count)
            let ok = buffer.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
            guard ok != 0 else { throw DataError(name, "corrupt PNG (\(pngMessage(&image)))") }
            for i in 0..<count { pixels[i] = Float(buffer[i]) }
        }
        return (pixels, [height, width, channels])
    }

    static func pngMessage(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// With `eighth`, decodes at 1/8 scale (a check: the pixels are not the image's) but returns the full shape.
    static func decodeJPEG(_ bytes: [UInt8], name: String, eighth: Bool = false) throws -> (pixels: [Float], shape: [Int]) {
        guard let handle = tjInitDecompress() else { throw DataError(name, "cannot start the JPEG decoder") }
        defer { tjDestroy(handle) }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        var copy = bytes
        let header = copy.withUnsafeMutableBufferPointer {
            tjDecompressHeader3(handle, $0.baseAddress, UInt(bytes.count), &width, &height, &subsampling, &colorspace)
        }
        guard header == 0 else { throw DataError(name, "corrupt JPEG (\(String(cString: tjGetErrorStr2(handle))))") }
        guard width > 0, height > 0, Int(width) * Int(height) <= maxPixels else {
            throw DataError(name, "JPEG of \(width)×\(height) pixels is empty or too large")
        }
        let gray = colorspace == Int32(TJCS_GRAY.rawValue)
        let channels = gray ? 1 : 3
        // TurboJPEG picks the scaling factor that fits the size asked for: 1/8 for ⌈w/8⌉×⌈h/8⌉.
        let (w, h) = eighth ? ((width + 7) / 8, (height + 7) / 8) : (width, height)
        var buffer = [UInt8](repeating: 0, count: Int(w) * Int(h) * channels)
        let status = copy.withUnsafeMutableBufferPointer { src in
            buffer.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(handle, src.baseAddress, UInt(bytes.count), dst.baseAddress, w, 0, h,
                              Int32(gray ? TJPF_GRAY.rawValue : TJPF_RGB.rawValue), Int32(TJFLAG_STOPONWARNING))
            }
        }
        // A warning (premature end of data, corrupt data) stops the decoder part-way: the image is damaged.
        guard status == 0 else {
            let fatal = tjGetErrorCode(handle) == Int32(TJERR_FATAL.rawValue)
            throw DataError(name, "\(fatal ? "corrupt" : "damaged") JPEG (\(String(cString: tjGetErrorStr2(handle))))")
        }
        return (eighth ? [] : buffer.map(Float.init), [Int(height), Int(width), channels])
    }
}
