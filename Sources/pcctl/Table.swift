import PrintableText

/// Every table pcctl prints, laid out one way: a title row, then one row per value.
///
/// Aligned tables give each column a fixed width (its separating space included), cut a longer
/// value to one less than the width so neighbours never touch, and leave the last column
/// unpadded. Tab-separated tables are for scripts (`cut -f`). Either way an unprintable
/// character (`PrintableText`) in a value (a session's command line, a lock's message: text that
/// people other than the administrator choose) is shown as `?`, so it cannot move the cursor,
/// restyle the terminal or forge a row.
struct Table {
    struct Column {
        var title: String
        /// Characters the column takes, its separating space included; the last column's is unused.
        var width: Int

        init(_ title: String, width: Int = 0) {
            self.title = title
            self.width = width
        }
    }

    enum Layout {
        case aligned, tabSeparated
    }

    let columns: [Column]
    let layout: Layout
    private var rows: [[String]] = []

    init(columns: [Column], layout: Layout = .aligned) {
        precondition(!columns.isEmpty, "a table has at least one column")
        precondition(layout == .tabSeparated || columns.dropLast().allSatisfy { $0.width > 1 }, "an aligned column is at least 2 wide")
        self.columns = columns
        self.layout = layout
    }

    /// One row, a value per column, in the columns' order.
    mutating func add(_ row: [String]) {
        precondition(row.count == columns.count, "a row of \(row.count) values in a table of \(columns.count) columns")
        rows.append(row)
    }

    /// The title row and the rows, one per line, without a final newline (for `print`).
    func render() -> String {
        ([columns.map(\.title)] + rows).map(line).joined(separator: "\n")
    }

    private func line(_ values: [String]) -> String {
        let shown = values.map(PrintableText.replaced)
        switch layout {
        case .tabSeparated:
            return shown.joined(separator: "\t")
        case .aligned:
            return zip(shown, columns).enumerated().map { index, cell in
                let (value, column) = cell
                guard index < columns.count - 1 else { return value }
                let cut = value.prefix(column.width - 1)
                return String(cut) + String(repeating: " ", count: column.width - cut.count)
            }.joined()
        }
    }
}
