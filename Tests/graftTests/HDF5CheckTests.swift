import Foundation
import Testing
import GraftTestSupport
@testable import graft

/// The work a load gives the check to do while the child reads (mapping weight pages ahead).
struct CheckWhileWaitingTests {
    @Test func runsUntilTheChildIsDoneThenTheCheckPasses() throws {
        // In this multi-threaded test process the check spawns a child (a fork needs a single thread).
        let check = ChildProcessHDF5Check()
        var calls = 0, polls = 0, sawDone = false
        try check(TestSupport.fixture("keras/keras3_lenet.h5")) { finished in
            calls += 1
            while !finished() { polls += 1; usleep(200) }
            sawDone = true
        }
        #expect(calls == 1 && sawDone)
        #expect(polls > 0)   // the child takes milliseconds to start: the work ran alongside it
        // A damaged file: the work still ends (the child's crash counts as done) and the check fails.
        var ended = false
        #expect(throws: (any Error).self) {
            try ChildProcessHDF5Check()(TestSupport.fixture("hdf5/damaged_crashes_libhdf5.h5")) { finished in
                while !finished() { usleep(200) }
                ended = true
            }
        }
        #expect(ended)
    }
}
