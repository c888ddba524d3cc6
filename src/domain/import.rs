//! Bulk import of candidates and of evaluation targets from CSV files as government offices
//! produce them: saved from Excel or WPS, in UTF-8 (with or without a BOM) or in GBK, with
//! Chinese or English headers in any order and stray empty rows at the end.
//!
//! Parsing and validation only, no I/O: the caller writes the rows in one transaction, so a
//! file is taken whole or not at all. That is why every bad row is reported at once, numbered
//! as the spreadsheet shows it, so that an office fixes its file in one round instead of one
//! error per upload.

use std::collections::{HashMap, HashSet};

/// The most data rows one file may hold; a larger list is imported in several files.
pub const MAX_ROWS: usize = 10_000;

/// One bad row: `row` is the line's number in the file as a spreadsheet shows it (the header
/// is row 1, the first data row is row 2). All of a row's problems are in one `reason`,
/// separated by "；".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    pub row: usize,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("文件编码无法识别，请另存为UTF-8或GBK编码的CSV")]
    Encoding,
    #[error("文件中没有数据行")]
    Empty,
    #[error("缺少必填列：{}", .0.join("、"))]
    MissingColumns(Vec<String>),
    #[error("文件有{0}行数据，超过上限{MAX_ROWS}行，请分批导入")]
    TooManyRows(usize),
    #[error("文件中有{}行数据有误", .0.len())]
    Rows(Vec<RowError>),
}

impl ImportError {
    /// The bad rows, in file order; empty unless this is `Rows`.
    pub fn row_errors(&self) -> &[RowError] {
        match self {
            ImportError::Rows(errors) => errors,
            _ => &[],
        }
    }
}

/// A candidate as read from one row, trimmed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateRow {
    pub row: usize,
    pub category: String,
    pub name: String,
    pub unit: String,
    pub department: String,
    pub title: String,
    pub photo_url: String,
    pub story: String,
}

/// An evaluation target as read from one row. Rows come back in file order, so a parent is
/// always before its children and the caller can insert them in that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRow {
    pub row: usize,
    pub code: String,
    pub name: String,
    pub parent_code: Option<String>,
}

/// Decodes an uploaded file: UTF-8 with or without a BOM; otherwise GBK (decoded as GB18030,
/// its superset). The BOM is removed. A file that is neither valid UTF-8 nor decodes without
/// errors as GB18030 is refused rather than imported with replacement characters in names.
pub fn decode_text(bytes: &[u8]) -> Result<String, ImportError> {
    const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
    if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        // A BOM declares UTF-8; reading such a file as GBK would only produce nonsense.
        return std::str::from_utf8(rest)
            .map(str::to_owned)
            .map_err(|_| ImportError::Encoding);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_owned());
    }
    encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|text| text.trim_start_matches('\u{FEFF}').to_owned())
        .ok_or(ImportError::Encoding)
}

/// Parses a candidate list. `categories` are the names of the campaign's categories; a row
/// naming another category is bad.
pub fn parse_candidates(
    bytes: &[u8],
    categories: &[String],
) -> Result<Vec<CandidateRow>, ImportError> {
    const COLUMNS: &[Column] = &[
        Column::required("类别", &["类别", "category", "奖项"]),
        Column::required("姓名", &["姓名", "name"]),
        Column::required("单位", &["单位", "unit", "工作单位"]),
        Column::optional("科室", &["科室", "department"]),
        Column::optional("职称", &["职称", "title"]),
        Column::optional("照片链接", &["照片", "photo_url", "照片链接"]),
        Column::optional("事迹", &["事迹", "story", "先进事迹"]),
    ];
    let records = read_table(bytes, COLUMNS)?;

    let mut rows = Vec::with_capacity(records.len());
    let mut errors = Vec::new();
    // (name, unit) → the row it first appeared on.
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for Record { row, fields } in records {
        let mut fields = fields.into_iter();
        let mut next = || fields.next().unwrap_or_default();
        let (category, name, unit) = (next(), next(), next());
        let (department, title, photo_url, story) = (next(), next(), next(), next());
        let mut reasons = Vec::new();
        check_text(&mut reasons, "类别", &category, true, 50);
        if !category.is_empty() && !categories.contains(&category) {
            reasons.push(format!("类别“{category}”不存在"));
        }
        check_text(&mut reasons, "姓名", &name, true, 50);
        check_text(&mut reasons, "单位", &unit, true, 100);
        check_text(&mut reasons, "科室", &department, false, 100);
        check_text(&mut reasons, "职称", &title, false, 100);
        check_text(&mut reasons, "照片链接", &photo_url, false, 500);
        if !photo_url.is_empty() && !is_http_url(&photo_url) {
            reasons.push("照片链接须以http://或https://开头".to_owned());
        }
        check_text(&mut reasons, "事迹", &story, false, 5000);
        if !name.is_empty() && !unit.is_empty() {
            // The first row keeps the pair even when it has other faults: fixing those
            // would not make the later row any less a duplicate.
            match seen.entry((name.clone(), unit.clone())) {
                std::collections::hash_map::Entry::Occupied(first) => {
                    reasons.push(format!("与第{}行重复", first.get()));
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(row);
                }
            }
        }
        if reasons.is_empty() {
            rows.push(CandidateRow {
                row,
                category,
                name,
                unit,
                department,
                title,
                photo_url,
                story,
            });
        } else {
            errors.push(RowError {
                row,
                reason: reasons.join("；"),
            });
        }
    }
    finish(rows, errors)
}

/// Parses a tree of evaluation targets. `existing_codes` are target codes already in the
/// campaign. A row's parent must be an existing code or a code defined on an earlier row of
/// the same file, so the tree has no cycles by construction and file order is a valid
/// insertion order.
pub fn parse_targets(
    bytes: &[u8],
    existing_codes: &[String],
) -> Result<Vec<TargetRow>, ImportError> {
    const COLUMNS: &[Column] = &[
        Column::required("编码", &["编码", "code"]),
        Column::required("名称", &["名称", "name"]),
        Column::optional("上级编码", &["上级编码", "parent_code"]),
    ];
    let records = read_table(bytes, COLUMNS)?;

    let existing: HashSet<&str> = existing_codes.iter().map(String::as_str).collect();
    let mut rows = Vec::with_capacity(records.len());
    let mut errors = Vec::new();
    // Codes defined so far in this file → the row that defined them.
    let mut defined: HashMap<String, usize> = HashMap::new();
    for Record { row, fields } in records {
        let mut fields = fields.into_iter();
        let mut next = || fields.next().unwrap_or_default();
        let (code, name, parent) = (next(), next(), next());
        let mut reasons = Vec::new();
        check_text(&mut reasons, "编码", &code, true, 50);
        if !code.is_empty() && !is_code(&code) {
            reasons.push("编码只能由字母、数字和-_.组成".to_owned());
        }
        check_text(&mut reasons, "名称", &name, true, 100);
        if !parent.is_empty() {
            if parent == code {
                reasons.push("上级编码不能是本行的编码".to_owned());
            } else if !existing.contains(parent.as_str()) && !defined.contains_key(&parent) {
                reasons.push(format!("上级编码“{parent}”不存在或出现在本行之后"));
            }
        }
        if !code.is_empty() {
            if existing.contains(code.as_str()) {
                reasons.push(format!("编码“{code}”已存在"));
            } else if let Some(first) = defined.get(&code) {
                reasons.push(format!("编码“{code}”与第{first}行重复"));
            } else {
                // Registered even when the row has other faults, so that its children are
                // not also reported as orphans: one fix, one message.
                defined.insert(code.clone(), row);
            }
        }
        if reasons.is_empty() {
            rows.push(TargetRow {
                row,
                code,
                name,
                parent_code: (!parent.is_empty()).then_some(parent),
            });
        } else {
            errors.push(RowError {
                row,
                reason: reasons.join("；"),
            });
        }
    }
    finish(rows, errors)
}

/// A service record as read from one row of a CSV file (checked by the survey import, which
/// takes the good rows and reports the others rather than refusing the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyRow {
    pub row: usize,
    pub phone: String,
    pub target_code: String,
    pub visited_on: String,
}

/// Reads a file of service records: columns 手机号, 对象编码 (the unit's or department's code)
/// and 就诊日期, in any order.
pub fn parse_survey_records(bytes: &[u8]) -> Result<Vec<SurveyRow>, ImportError> {
    const COLUMNS: &[Column] = &[
        Column::required("手机号", &["手机号", "手机号码", "phone"]),
        Column::required("对象编码", &["对象编码", "编码", "target_code"]),
        Column::required("就诊日期", &["就诊日期", "visited_on"]),
    ];
    Ok(read_table(bytes, COLUMNS)?
        .into_iter()
        .map(|Record { row, fields }| {
            let mut fields = fields.into_iter();
            let mut next = || fields.next().unwrap_or_default();
            SurveyRow {
                row,
                phone: next(),
                target_code: next(),
                visited_on: next(),
            }
        })
        .collect())
}

/// A column the importer knows: its name in messages and the headers that mean it
/// (lowercase, so English headers match case-insensitively).
struct Column {
    label: &'static str,
    headers: &'static [&'static str],
    required: bool,
}

impl Column {
    const fn required(label: &'static str, headers: &'static [&'static str]) -> Self {
        Self {
            label,
            headers,
            required: true,
        }
    }
    const fn optional(label: &'static str, headers: &'static [&'static str]) -> Self {
        Self {
            label,
            headers,
            required: false,
        }
    }
}

/// A non-empty data row: its spreadsheet row number and its fields, trimmed, in the order of
/// the `Column`s asked for (empty where the column is absent or the row is short).
struct Record {
    row: usize,
    fields: Vec<String>,
}

/// Reads the header and the data rows, checks the columns and the row count. Rows whose known
/// fields are all empty are dropped: Excel leaves such rows at the end, and templates often
/// carry a pre-filled serial-number column on rows nobody filled in.
fn read_table(bytes: &[u8], columns: &[Column]) -> Result<Vec<Record>, ImportError> {
    // csv already treats CR, LF and CRLF as line ends; normalising them lets the row count
    // below look for "\n" alone, and stores multi-line stories with plain "\n".
    let text = decode_text(bytes)?
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());

    let mut record = csv::StringRecord::new();
    // Rows are numbered as a spreadsheet shows them: a quoted field with line breaks is one
    // row, and a blank line is a row too. csv's own line numbers get both wrong, so the
    // count is kept here: a record starts just past the previous record's line end, and the
    // line ends right after that start are blank lines csv skipped.
    let mut last_row = 0usize;
    let mut next_row = |record: &csv::StringRecord| {
        let start = record.position().map_or(0, |p| p.byte()) as usize;
        let blank_lines = text
            .as_bytes()
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&b| b == b'\n')
            .count();
        last_row += 1 + blank_lines;
        last_row
    };

    // With a `&[u8]` source and flexible rows, csv has no I/O to fail and the text is valid
    // UTF-8, so an error here is not expected; the file is refused rather than half-read.
    if !reader
        .read_record(&mut record)
        .map_err(|_| ImportError::Encoding)?
    {
        return Err(ImportError::Empty);
    }
    next_row(&record);
    let headers: Vec<String> = record
        .iter()
        .map(|h| h.trim_start_matches('\u{FEFF}').trim().to_lowercase())
        .collect();
    // The leftmost matching header wins; a second one ("工作单位" beside "单位") is ignored.
    let positions: Vec<Option<usize>> = columns
        .iter()
        .map(|c| headers.iter().position(|h| c.headers.contains(&h.as_str())))
        .collect();
    let missing: Vec<String> = columns
        .iter()
        .zip(&positions)
        .filter(|(c, p)| c.required && p.is_none())
        .map(|(c, _)| c.label.to_owned())
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::MissingColumns(missing));
    }

    let mut records = Vec::new();
    let mut count = 0usize;
    while reader
        .read_record(&mut record)
        .map_err(|_| ImportError::Encoding)?
    {
        let row = next_row(&record);
        let fields: Vec<String> = positions
            .iter()
            .map(|p| {
                p.and_then(|i| record.get(i))
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
            .collect();
        if fields.iter().all(String::is_empty) {
            continue;
        }
        count += 1;
        // Past the limit only the count goes on, for the message; nothing more is kept.
        if count <= MAX_ROWS {
            records.push(Record { row, fields });
        }
    }
    if count > MAX_ROWS {
        return Err(ImportError::TooManyRows(count));
    }
    if records.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok(records)
}

fn finish<T>(rows: Vec<T>, errors: Vec<RowError>) -> Result<Vec<T>, ImportError> {
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(ImportError::Rows(errors))
    }
}

fn check_text(reasons: &mut Vec<String>, label: &str, value: &str, required: bool, max: usize) {
    if value.is_empty() {
        if required {
            reasons.push(format!("{label}不能为空"));
        }
    } else if value.chars().count() > max {
        reasons.push(format!("{label}不能超过{max}个字"));
    }
}

fn is_http_url(s: &str) -> bool {
    let starts = |prefix: &str| {
        s.as_bytes()
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
    };
    starts("http://") || starts("https://")
}

fn is_code(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cats() -> Vec<String> {
        vec!["医生".to_owned(), "护士".to_owned()]
    }

    fn candidates(text: &str) -> Result<Vec<CandidateRow>, ImportError> {
        parse_candidates(text.as_bytes(), &cats())
    }

    fn targets(text: &str, existing: &[&str]) -> Result<Vec<TargetRow>, ImportError> {
        let existing: Vec<String> = existing.iter().map(|s| s.to_string()).collect();
        parse_targets(text.as_bytes(), &existing)
    }

    fn errors(result: Result<impl std::fmt::Debug, ImportError>) -> Vec<(usize, String)> {
        result
            .expect_err("the file should be refused")
            .row_errors()
            .iter()
            .map(|e| (e.row, e.reason.clone()))
            .collect()
    }

    const HEADER: &str = "类别,姓名,单位,科室,职称,照片,事迹\n";

    #[test]
    fn survey_records_read_in_any_column_order() {
        let file = "就诊日期,手机号,对象编码\n2026-11-20,13800138000,H01\n,,\n";
        let rows = parse_survey_records(file.as_bytes()).unwrap();
        assert_eq!(
            rows,
            [SurveyRow {
                row: 2,
                phone: "13800138000".into(),
                target_code: "H01".into(),
                visited_on: "2026-11-20".into()
            }]
        );
        assert!(matches!(
            parse_survey_records("手机号\n1".as_bytes()),
            Err(ImportError::MissingColumns(_))
        ));
    }

    #[test]
    fn utf8_with_a_bom_is_read_and_the_bom_is_not_part_of_the_first_header() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice("类别,姓名,单位\r\n医生,张三,市一院\r\n".as_bytes());
        let rows = parse_candidates(&bytes, &cats()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].category, "医生");
        assert_eq!(rows[0].name, "张三");
        assert_eq!(rows[0].row, 2);
        assert_eq!(
            decode_text(&bytes).unwrap(),
            "类别,姓名,单位\r\n医生,张三,市一院\r\n"
        );
    }

    #[test]
    fn old_mac_line_ends_are_line_ends_too() {
        let rows =
            candidates("类别,姓名,单位\r医生,张三,市一院\r\r医生,李四,\"市二院\"\r").unwrap();
        assert_eq!((rows[1].row, rows[1].unit.as_str()), (4, "市二院"));
    }

    #[test]
    fn utf8_without_a_bom_is_read() {
        let rows = candidates("类别,姓名,单位\n护士,李四,市二院\n").unwrap();
        assert_eq!(rows[0].name, "李四");
        assert_eq!(rows[0].unit, "市二院");
    }

    #[test]
    fn gbk_files_decode_to_the_right_chinese_names() {
        let text =
            "类别,姓名,单位,科室\r\n医生,欧阳修,市第一人民医院,心内科\r\n护士,李清照,县中医院,\r\n";
        let (gbk, _, unmappable) = encoding_rs::GBK.encode(text);
        assert!(!unmappable);
        assert!(
            std::str::from_utf8(&gbk).is_err(),
            "the test needs non-UTF-8 bytes"
        );
        let rows = parse_candidates(&gbk, &cats()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "欧阳修");
        assert_eq!(rows[0].unit, "市第一人民医院");
        assert_eq!(rows[0].department, "心内科");
        assert_eq!(rows[1].name, "李清照");
        assert_eq!(rows[1].department, "");
    }

    #[test]
    fn bytes_that_are_neither_utf8_nor_gb18030_are_refused() {
        // 0x80 alone is "€" in GB18030, but 0xFF can never start a GB18030 sequence.
        // "姓" in UTF-8, then bytes that are not UTF-8 (0x80 cannot start a character).
        let bytes = b"\xE5\xA7\x93\x80\xFF,x\n";
        assert!(
            encoding_rs::GB18030
                .decode_without_bom_handling_and_without_replacement(bytes)
                .is_none()
        );
        assert_eq!(decode_text(bytes), Err(ImportError::Encoding));
        assert_eq!(parse_candidates(bytes, &cats()), Err(ImportError::Encoding));
        // A BOM promises UTF-8: bytes after it that are not UTF-8 are not guessed at.
        assert_eq!(
            decode_text(b"\xEF\xBB\xBF\xC4\xE3"),
            Err(ImportError::Encoding)
        );
    }

    #[test]
    fn english_headers_match_in_any_case_and_order_and_extra_columns_are_ignored() {
        let text = " Name ,UNIT,Remarks,Category,photo_URL,Story,Department,Title\n\
                    王五,市三院,备注,医生,https://example.cn/a.jpg,救死扶伤,外科,主任医师\n";
        let rows = candidates(text).unwrap();
        assert_eq!(
            rows,
            vec![CandidateRow {
                row: 2,
                category: "医生".into(),
                name: "王五".into(),
                unit: "市三院".into(),
                department: "外科".into(),
                title: "主任医师".into(),
                photo_url: "https://example.cn/a.jpg".into(),
                story: "救死扶伤".into(),
            }]
        );
    }

    #[test]
    fn common_header_variants_are_accepted() {
        let text =
            "奖项,姓名,工作单位,照片链接,先进事迹\n护士,赵六,县医院,http://x.cn/p.png,事迹\n";
        let rows = candidates(text).unwrap();
        assert_eq!(rows[0].category, "护士");
        assert_eq!(rows[0].unit, "县医院");
        assert_eq!(rows[0].photo_url, "http://x.cn/p.png");
        assert_eq!(rows[0].story, "事迹");
    }

    #[test]
    fn every_bad_row_is_reported_with_its_spreadsheet_row_and_reason() {
        let text = format!(
            "{HEADER}医生,张三,市一院,,,,\n\
             医生,,市一院,,,,\n\
             护士,李四,市二院,,,,\n\
             医生,王五,市三院,,,ftp://x.cn/a.jpg,\n\
             医生,张三,市一院,,,,\n"
        );
        assert_eq!(
            errors(candidates(&text)),
            vec![
                (3, "姓名不能为空".to_owned()),
                (5, "照片链接须以http://或https://开头".to_owned()),
                (6, "与第2行重复".to_owned()),
            ]
        );
    }

    #[test]
    fn all_faults_of_one_row_are_named_together() {
        let long_name = "名".repeat(51);
        let text = format!("{HEADER}  ,{long_name},,,,,\n");
        assert_eq!(
            errors(candidates(&text)),
            vec![(
                2,
                "类别不能为空；姓名不能超过50个字；单位不能为空".to_owned()
            )]
        );
    }

    #[test]
    fn an_unknown_category_is_named_in_the_reason() {
        let text = "类别,姓名,单位\n护理,张三,市一院\n";
        assert_eq!(
            errors(candidates(text)),
            vec![(2, "类别“护理”不存在".to_owned())]
        );
    }

    #[test]
    fn missing_required_columns_are_named_in_chinese() {
        let err = candidates("类别,科室\n医生,外科\n").unwrap_err();
        assert_eq!(
            err,
            ImportError::MissingColumns(vec!["姓名".into(), "单位".into()])
        );
        assert_eq!(err.to_string(), "缺少必填列：姓名、单位");
        assert!(err.row_errors().is_empty());
        assert_eq!(
            targets("编码,上级编码\nA,\n", &[]).unwrap_err(),
            ImportError::MissingColumns(vec!["名称".into()])
        );
    }

    #[test]
    fn an_empty_file_or_a_header_alone_has_no_data_rows() {
        assert_eq!(candidates(""), Err(ImportError::Empty));
        assert_eq!(
            parse_candidates(b"\xEF\xBB\xBF", &cats()),
            Err(ImportError::Empty)
        );
        assert_eq!(candidates("类别,姓名,单位\r\n"), Err(ImportError::Empty));
        assert_eq!(
            candidates("类别,姓名,单位\n,,\n , ,\n"),
            Err(ImportError::Empty)
        );
        assert_eq!(targets("编码,名称\n", &[]), Err(ImportError::Empty));
        assert_eq!(ImportError::Empty.to_string(), "文件中没有数据行");
    }

    #[test]
    fn quoted_fields_keep_commas_and_line_breaks_and_later_rows_keep_their_numbers() {
        let text = "类别,姓名,单位,事迹\r\n\
                    医生,张三,\"市一院,总院\",\"第一段\r\n第二段\r\n\"\"引号\"\"\"\r\n\
                    医生,,市二院,\r\n";
        let err = candidates(text).unwrap_err();
        // The story spans three lines of the file but is one spreadsheet row (row 2).
        assert_eq!(
            err.row_errors(),
            &[RowError {
                row: 3,
                reason: "姓名不能为空".into()
            }]
        );

        let rows = candidates(&text.replace("医生,,市二院", "医生,李四,市二院")).unwrap();
        assert_eq!(rows[0].unit, "市一院,总院");
        assert_eq!(rows[0].story, "第一段\n第二段\n\"引号\"");
        assert_eq!(rows[1].row, 3);
    }

    #[test]
    fn short_rows_read_as_empty_fields_and_blank_rows_are_skipped_but_counted() {
        let text = "类别,姓名,单位,科室,职称\n医生,张三\n\n,,,,\n医生,李四,市二院\n,,,,\n,,,,\n";
        assert_eq!(
            errors(candidates(text)),
            vec![(2, "单位不能为空".to_owned())]
        );
        let rows = candidates(&text.replace("医生,张三\n", "医生,张三,市一院\n")).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].title, "");
        // Row 3 is the blank line, row 4 the empty cells: a spreadsheet shows both.
        assert_eq!(rows[1].row, 5);
    }

    #[test]
    fn rows_are_numbered_as_a_spreadsheet_shows_them() {
        // Row 2 spans two lines of the file; rows 3, 4 and 6 are blank lines; row 5 has
        // empty cells.
        let text = "类别,姓名,单位,事迹\r\n医生,张三,市一院,\"一\r\n二\"\r\n\r\n\r\n,,,\r\n\r\n医生,,市二院,\r\n";
        assert_eq!(
            errors(candidates(text)),
            vec![(7, "姓名不能为空".to_owned())]
        );
        let text = "类别,姓名,单位\n医生,张三,市一院\n\n\n医生,李四,\n";
        assert_eq!(
            errors(candidates(text)),
            vec![(5, "单位不能为空".to_owned())]
        );
    }

    #[test]
    fn limits_on_length_and_links_are_enforced() {
        let text = format!(
            "类别,姓名,单位,事迹,照片\n医生,张三,市一院,{},HTTPS://x.cn/a.jpg\n医生,李四,市一院,{},\n",
            "字".repeat(5000),
            "字".repeat(5001),
        );
        assert_eq!(
            errors(candidates(&text)),
            vec![(3, "事迹不能超过5000个字".to_owned())]
        );
    }

    #[test]
    fn more_than_max_rows_is_refused_with_the_count() {
        let mut text = String::from("类别,姓名,单位\n");
        for i in 0..=MAX_ROWS {
            text.push_str(&format!("医生,医生{i},市一院\n"));
        }
        assert_eq!(
            candidates(&text),
            Err(ImportError::TooManyRows(MAX_ROWS + 1))
        );
        let at_limit = text.rsplitn(3, '\n').nth(2).unwrap().to_owned() + "\n";
        assert_eq!(candidates(&at_limit).unwrap().len(), MAX_ROWS);
    }

    #[test]
    fn a_target_tree_must_name_parents_before_children() {
        let parent_first =
            "编码,名称,上级编码\nA01,市卫健委,\nA01.1,医政科,A01\nA01.1.1,一组,A01.1\n";
        let rows = targets(parent_first, &[]).unwrap();
        assert_eq!(
            rows,
            vec![
                TargetRow {
                    row: 2,
                    code: "A01".into(),
                    name: "市卫健委".into(),
                    parent_code: None
                },
                TargetRow {
                    row: 3,
                    code: "A01.1".into(),
                    name: "医政科".into(),
                    parent_code: Some("A01".into()),
                },
                TargetRow {
                    row: 4,
                    code: "A01.1.1".into(),
                    name: "一组".into(),
                    parent_code: Some("A01.1".into()),
                },
            ]
        );

        let child_first = "编码,名称,上级编码\nA01.1,医政科,A01\nA01,市卫健委,\n";
        assert_eq!(
            errors(targets(child_first, &[])),
            vec![(2, "上级编码“A01”不存在或出现在本行之后".to_owned())]
        );
    }

    #[test]
    fn a_parent_may_be_a_code_already_in_the_campaign() {
        let rows = targets("code,name,parent_code\nB1,外科,ROOT\n", &["ROOT"]).unwrap();
        assert_eq!(rows[0].parent_code.as_deref(), Some("ROOT"));
    }

    #[test]
    fn target_codes_must_be_new_unique_well_formed_and_not_their_own_parent() {
        let text = "编码,名称,上级编码\n\
                    A01,市卫健委,\n\
                    A01,重复,\n\
                    X9,已有,\n\
                    A 02,空格,\n\
                    C3,自指,C3\n\
                    ,无编码,\n";
        assert_eq!(
            errors(targets(text, &["X9"])),
            vec![
                (3, "编码“A01”与第2行重复".to_owned()),
                (4, "编码“X9”已存在".to_owned()),
                (5, "编码只能由字母、数字和-_.组成".to_owned()),
                (6, "上级编码不能是本行的编码".to_owned()),
                (7, "编码不能为空".to_owned()),
            ]
        );
    }

    #[test]
    fn row_errors_serialize_for_the_api_and_the_summary_counts_them() {
        let err = candidates("类别,姓名,单位\n医生,,x\n医生,,y\n").unwrap_err();
        assert_eq!(err.to_string(), "文件中有2行数据有误");
        assert_eq!(
            serde_json::to_string(&err.row_errors()[0]).unwrap(),
            r#"{"row":2,"reason":"姓名不能为空"}"#
        );
        assert_eq!(
            ImportError::TooManyRows(12_000).to_string(),
            "文件有12000行数据，超过上限10000行，请分批导入"
        );
    }
}
