import Foundation
import Synchronization

/// Items handed over from any thread and processed in order, in batches, on one dispatch queue:
/// whatever arrived while a batch was being processed forms the next batch. How the audit log
/// turns many concurrent appends into few transactions.
final class SerialBatcher<Item: Sendable>: Sendable {
    let queue: DispatchQueue
    private let maximumBatch: Int
    private let state = Mutex(State())
    private let process: @Sendable ([Item]) -> Void

    private struct State {
        var items: [Item] = []
        var draining = false
    }

    init(label: String, maximumBatch: Int = .max, process: @escaping @Sendable ([Item]) -> Void) {
        queue = DispatchQueue(label: label)
        self.maximumBatch = maximumBatch
        self.process = process
    }

    func submit(_ item: Item) {
        let start = state.withLock { state -> Bool in
            state.items.append(item)
            guard !state.draining else { return false }
            state.draining = true
            return true
        }
        if start { queue.async { self.drain() } }
    }

    private func drain() {
        while true {
            let batch = state.withLock { state -> [Item] in
                let batch = Array(state.items.prefix(maximumBatch))
                state.items.removeFirst(batch.count)
                if batch.isEmpty { state.draining = false }
                return batch
            }
            if batch.isEmpty { return }
            process(batch)
        }
    }
}
