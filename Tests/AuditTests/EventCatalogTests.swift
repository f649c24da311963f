import Audit
import Foundation
import XCTest

/// docs/events.md is the catalog's rendering, and the constructors write only what it documents.
final class EventCatalogTests: XCTestCase {
    static let page = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/events.md")

    /// `make docs` (PORTCULLIS_WRITE_DOCS=1) rewrites the page; otherwise a stale page fails.
    func testTheEventsPageIsCurrent() throws {
        let rendered = EventCatalog.markdown()
        if ProcessInfo.processInfo.environment["PORTCULLIS_WRITE_DOCS"] == "1" {
            try rendered.write(to: Self.page, atomically: true, encoding: .utf8)
        }
        let current = try String(contentsOf: Self.page, encoding: .utf8)
        XCTAssertEqual(current, rendered, "docs/events.md is stale: run 'make docs'")
    }

    func testEveryConstructedEventIsDocumentedFieldByField() {
        let events = EventCorpus.everyKind()
        let common: Set<String> = ["event", "code", "uid", "time"]
        for event in events {
            guard let documentation = EventCatalog.documentation(of: event) else { XCTFail("\(event.event) \(event.code) is not in the catalog"); continue }
            let documented = common.union(documentation.fields.map(\.name))
            XCTAssertEqual(Set(event.fields.keys).subtracting(documented), [], "\(event.event) \(event.code)")
            XCTAssertNotNil(event.kind, "\(event.event) \(event.code)")
        }
        let codes = EventCatalog.kinds.map { "\($0.name) \($0.code)" }
        XCTAssertEqual(codes.count, Set(codes).count, "each kind documented once")
    }
}
