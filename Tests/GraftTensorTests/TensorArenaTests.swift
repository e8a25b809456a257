import Foundation
import Testing
@testable import GraftTensor

/// Tensors carved from one mapping (a checkpoint's weights): placement, room, pages mapped ahead and given back.
struct TensorArenaTests {
    /// Whether each page of `range` is resident (`mincore`).
    static func resident(_ start: UnsafeMutableRawPointer, _ bytes: Int) -> [Bool] {
        let page = TensorArena.pageSize
        let first = Int(bitPattern: start) & ~(page - 1)
        let pages = (Int(bitPattern: start) + bytes - first + page - 1) / page
        var vec = [UInt8](repeating: 0, count: pages)
        #expect(mincore(UnsafeMutableRawPointer(bitPattern: first), pages * page, &vec) == 0)
        return vec.map { $0 & 1 == 1 }
    }

    @Test func placesTensorsAlignedLikeTheirSourceUntilFull() throws {
        let arena = try #require(TensorArena(bytes: 1 << 20))
        for offset in [0, 8, 24, 40, 4, 1000, 63] {
            var t = try #require(Tensor(uninitializedShape: [3, 5], in: arena, alignedLike: offset))
            let address = t.withUnsafeMutableBufferPointer { Int(bitPattern: $0.baseAddress) }
            #expect(address % 64 == offset % 64 / 4 * 4, "offset \(offset)")
            t.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] = Float(i) } }
            #expect(t.scalars == (0..<15).map(Float.init))
        }
        // Tensors do not overlap: each keeps its values while the next ones are written.
        let a = try #require(Tensor(uninitializedShape: [1000], in: arena))
        var b = try #require(Tensor(uninitializedShape: [1000], in: arena))
        var a2 = a
        a2.withUnsafeMutableBufferPointer { $0.initialize(repeating: 1) }
        b.withUnsafeMutableBufferPointer { $0.initialize(repeating: 2) }
        #expect(a2.scalars.allSatisfy { $0 == 1 } && b.scalars.allSatisfy { $0 == 2 })
        // Copy on write as for any tensor: a copy's change leaves the arena's slice alone.
        var c = b
        c[0] = 7
        #expect(b[0] == 2 && c[0] == 7)
        // No room: nil, and the caller allocates as usual.
        #expect(Tensor(uninitializedShape: [1 << 20], in: arena) == nil)
        #expect(Tensor(uninitializedShape: [100], in: arena) != nil)
        arena.trim()
        #expect(Tensor(uninitializedShape: [1], in: arena) == nil)
    }

    @Test func populatesAheadStopsWhenToldAndGivesPagesBack() throws {
        let bytes = 8 << 20
        let arena = try #require(TensorArena(bytes: bytes))
        var t = try #require(Tensor(uninitializedShape: [bytes / 4 - 64], in: arena))
        let base = try #require(t.withUnsafeMutableBufferPointer { $0.baseAddress.map(UnsafeMutableRawPointer.init) })
        #expect(Self.resident(base, 1 << 20).allSatisfy { !$0 })
        // Stopped after the first step: 1 MiB mapped, the rest not.
        var asked = 0
        arena.populate { asked += 1; return asked > 1 }
        #expect(Self.resident(base, 1 << 20).allSatisfy { $0 })
        #expect(Self.resident(base + (4 << 20), 1 << 20).allSatisfy { !$0 })
        // A later call carries on to the end.
        arena.populate()
        #expect(Self.resident(base, bytes - 4096).allSatisfy { $0 })
        t.withUnsafeMutableBufferPointer { $0.initialize(repeating: 3) }
        // When the tensor dies its whole pages go back to the system (the arena itself lives on here).
        t = Tensor(shape: [1])
        #expect(Self.resident(base + 4096, bytes - 3 * 4096).allSatisfy { !$0 })
        withExtendedLifetime(arena) {}
    }
}
