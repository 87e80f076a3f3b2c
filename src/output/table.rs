//! The one table renderer for listings (`ls`, `status`, `backups`, `schedule ls`, the save
//! summary): a header, then one line per row, columns two spaces apart.

/// Which side of its column a cell keeps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A column: its header, its alignment, and the width it keeps even when every cell is
/// narrower (so that tables of short values still line up from one run to the next).
#[derive(Debug, Clone)]
pub struct Column {
    header: String,
    align: Align,
    min: usize,
}

impl Column {
    pub fn left(header: impl Into<String>) -> Column {
        Column {
            header: header.into(),
            align: Align::Left,
            min: 0,
        }
    }

    pub fn right(header: impl Into<String>) -> Column {
        Column {
            align: Align::Right,
            ..Column::left(header)
        }
    }

    /// At least `width` characters wide.
    pub fn min(mut self, width: usize) -> Column {
        self.min = width;
        self
    }
}

/// Rows under a header. A column is as wide as its minimum, its header or its widest cell,
/// whichever is widest (in characters); the last column is not padded, so no line ends in
/// spaces.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: impl IntoIterator<Item = Column>) -> Table {
        Table {
            columns: columns.into_iter().collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row, one cell per column.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let row: Vec<String> = cells.into_iter().map(Into::into).collect();
        debug_assert_eq!(row.len(), self.columns.len(), "one cell per column");
        self.rows.push(row);
    }

    /// The header and the rows, each line ending in a newline.
    pub fn render(&self) -> String {
        let width = |text: &str| text.chars().count();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|cell| width(cell))
                    .fold(c.min.max(width(&c.header)), usize::max)
            })
            .collect();
        let header: Vec<&str> = self.columns.iter().map(|c| c.header.as_str()).collect();
        let mut out = String::new();
        for cells in std::iter::once(header).chain(
            self.rows
                .iter()
                .map(|r| r.iter().map(String::as_str).collect()),
        ) {
            let last = cells.len().saturating_sub(1);
            let line: Vec<String> = cells
                .iter()
                .zip(&self.columns)
                .zip(&widths)
                .enumerate()
                .map(|(i, ((cell, column), &w))| match column.align {
                    Align::Right => format!("{cell:>w$}"),
                    Align::Left if i == last => cell.to_string(),
                    Align::Left => format!("{cell:<w$}"),
                })
                .collect();
            out.push_str(line.join("  ").trim_end_matches(' '));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell_or_their_minimum() {
        let mut t = Table::new([
            Column::left("NAME"),
            Column::right("SIZE").min(6),
            Column::left("NOTE").min(8),
            Column::left("LAST"),
        ]);
        t.row(["a", "1", "x", "end"]);
        t.row(["longer", "1234567", "", ""]);
        t.row(["é", "2", "note", "z"]);
        assert_eq!(
            t.render(),
            "\
NAME       SIZE  NOTE      LAST
a             1  x         end
longer  1234567
é             2  note      z
"
        );
    }

    #[test]
    fn an_empty_table_is_its_header() {
        let t = Table::new([Column::left("A").min(3), Column::right("B").min(3)]);
        assert_eq!(t.render(), "A      B\n");
    }
}
