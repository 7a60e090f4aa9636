//! Text tables for a terminal: columns aligned by display width (an emoji
//! or a CJK character takes two columns, a combining accent none), and
//! fitted to a width by cutting the cells of the columns that may be cut.

use std::borrow::Cow;

use unicode_width::UnicodeWidthStr;

pub struct Column {
    pub header: &'static str,
    /// Whether its cells may be cut (with an ellipsis) to fit the width.
    pub shrinks: bool,
}

/// A column that may be cut keeps at least this many columns (or its
/// header's width): cut further, names and errors say nothing.
const MIN_SHRUNK: usize = 10;

/// Between two columns.
const GAP: &str = "  ";

/// The table, one line per row under the headers, each line at most
/// `max_width` display columns when given (as long as the columns that may
/// be cut can shrink enough).
pub fn render(columns: &[Column], rows: &[Vec<String>], max_width: Option<usize>) -> String {
    let mut widths: Vec<usize> = columns.iter().map(|c| c.header.width()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.width());
        }
    }
    if let Some(max) = max_width {
        fit(columns, &mut widths, max);
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (cell, &w) in cells.zip(&widths) {
            let cell = truncate(cell, w);
            text.push_str(&cell);
            text.extend(std::iter::repeat_n(' ', w - cell.width()));
            text.push_str(GAP);
        }
        text.truncate(text.trim_end().len());
        text.push('\n');
        text
    };
    let mut out = line(&mut columns.iter().map(|c| c.header));
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// Narrows the widest column that may be cut, one column at a time, until
/// the line fits or none can shrink further.
fn fit(columns: &[Column], widths: &mut [usize], max: usize) {
    let total = |widths: &[usize]| widths.iter().sum::<usize>() + GAP.len() * widths.len().saturating_sub(1);
    while total(widths) > max {
        let widest = columns
            .iter()
            .zip(widths.iter())
            .enumerate()
            .filter(|(_, (c, w))| c.shrinks && **w > MIN_SHRUNK.max(c.header.width()))
            .max_by_key(|(i, (_, w))| (**w, *i))
            .map(|(i, _)| i);
        match widest {
            Some(i) => widths[i] -= 1,
            None => return,
        }
    }
}

/// `s` cut to at most `max` display columns, ending in `…` when cut.
pub fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    if s.width() <= max {
        return Cow::Borrowed(s);
    }
    let room = max.saturating_sub(1);
    let mut end = 0;
    for (i, c) in s.char_indices() {
        let next = i + c.len_utf8();
        if s[..next].width() > room {
            break;
        }
        end = next;
    }
    Cow::Owned(format!("{}…", &s[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_by_display_width_never_inside_a_character() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("calendar of the team", 10), "calendar …");
        // Each of these takes two columns: four of them and the ellipsis
        // fill nine, a fifth would not fit in ten.
        assert_eq!(truncate("日本語のカレンダー", 10), "日本語の…");
        assert_eq!(truncate("📅📅📅📅📅📅", 10), "📅📅📅📅…");
        assert_eq!(truncate("📅📅📅📅📅📅", 0), "…");
    }

    #[test]
    fn columns_align_by_display_width_and_fit() {
        let columns = [Column { header: "NAME", shrinks: true }, Column { header: "N", shrinks: false }];
        let rows = vec![vec!["日本語".to_string(), "1".to_string()], vec!["abc".to_string(), "2".to_string()]];
        let text = render(&columns, &rows, None);
        let second_column: Vec<usize> = text.lines().map(|l| l.trim_end().width() - 1).collect();
        assert_eq!(second_column, [8, 8, 8], "{text}");
        let long = vec![vec!["x".repeat(50), "1".to_string()]];
        let text = render(&columns, &long, Some(20));
        assert!(text.lines().all(|l| l.width() <= 20), "{text}");
        assert!(text.contains("x…  1"), "{text}");
    }
}
