//! Label files: one class label per line, surrounding blanks trimmed, empty lines skipped (the
//! form of `stgcnclassify labels-file=`, of the `recognizer.labels` model metadata and of
//! `eventsink labels-file=`).

use std::path::Path;

/// The labels of a label file's text.
pub fn parse_labels(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Reads a label file; `property` names it in the errors. A file without labels is an error.
pub fn read_labels_file(path: &Path, property: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("Could not read {property} '{}': {e}", path.display()))?;
    let labels = parse_labels(&text);
    if labels.is_empty() {
        return Err(format!("{property} '{}' holds no labels", path.display()));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_one_a_line() {
        assert_eq!(
            parse_labels("falling\r\n\n  standing up \nsitting"),
            vec!["falling", "standing up", "sitting"]
        );
        let err = read_labels_file(Path::new("/nonexistent/labels.txt"), "labels-file");
        assert!(
            err.unwrap_err()
                .contains("labels-file '/nonexistent/labels.txt'")
        );
    }
}
