//! Extended XYZ, as ASE reads and writes it: per frame, the atom count, a comment line of
//! `key=value` pairs (values bare or in double quotes), and one line per atom whose columns
//! the `Properties` key names (`name:type:width`, types `S` string, `R` real, `I` integer,
//! `L` logical).
//!
//! ```text
//! 2
//! Lattice="3.6 0 0 0 3.6 0 0 0 3.6" Properties=species:S:1:pos:R:3:forces:R:3 energy=-0.5 pbc="T T T"
//! Cu 0.0 0.0 0.0 0.1 0.0 0.0
//! Au 1.8 1.8 0.0 -0.1 0.0 0.0
//! ```
//!
//! Recognized: `Lattice` (9 reals, the cell's rows), `pbc` (3 logicals; `T T T` when only a
//! lattice is given, `F F F` without one), `energy`, `stress` (9 reals, or Voigt's 6: xx yy
//! zz yz xz xy), `virial` (9), and the columns `species`, `pos` and `forces`. Every other key
//! and column is kept by name ([`Frame::info`], [`Frame::arrays`]). Without `Properties`,
//! the columns are `species:S:1:pos:R:3`. A malformed line is an [`Error::Parse`] naming
//! the file, the line and the field; nothing is skipped. Reals must be finite.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::frame::{Column, Frame};

/// The frames of extended-XYZ `text`; `file` names it in errors.
///
/// # Errors
///
/// [`Error::Parse`] for a malformed atom count, comment line or atom line.
///
/// ```
/// use equivariant_data::extxyz;
/// let text = "1\nProperties=species:S:1:pos:R:3:forces:R:3 energy=2.0\nO 0 0 0 0.5 0 0\n";
/// let frame = &extxyz::parse(text, "o.xyz")?[0];
/// assert_eq!(frame.forces, Some(vec![[0.5, 0.0, 0.0]]));
/// assert!(extxyz::parse("1\nenergy=x\nO 0 0 0\n", "bad.xyz").is_err());
/// # Ok::<(), equivariant_data::Error>(())
/// ```
pub fn parse(text: &str, file: &str) -> Result<Vec<Frame>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut frames = Vec::new();
    let mut at = 0;
    while at < lines.len() {
        if lines[at..].iter().all(|l| l.trim().is_empty()) {
            break;
        }
        let (frame, next) = parse_frame(&lines, at, file)?;
        frames.push(frame);
        at = next;
    }
    Ok(frames)
}

/// The frames of the extended-XYZ file at `path`.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read; as [`parse`] otherwise.
///
/// ```
/// use equivariant_data::{Error, extxyz};
/// let err = extxyz::read("no/such/file.xyz").unwrap_err();
/// assert!(matches!(err, Error::Io { .. }));
/// ```
pub fn read(path: impl AsRef<Path>) -> Result<Vec<Frame>> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        file: name.clone(),
        reason: e.to_string(),
    })?;
    parse(&text, &name)
}

/// A parse error at 0-based line `at`.
fn parse_error(file: &str, at: usize, field: &str, reason: impl Into<String>) -> Error {
    Error::Parse {
        file: file.to_string(),
        line: at + 1,
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// A column named by `Properties`.
struct Property {
    name: String,
    kind: char,
    width: usize,
}

/// The frame starting at line `at`, and the line after it.
fn parse_frame(lines: &[&str], at: usize, file: &str) -> Result<(Frame, usize)> {
    let count = lines[at].trim();
    let n: usize = count.parse().map_err(|_| {
        parse_error(
            file,
            at,
            "atom count",
            format!("{count:?} is not a number of atoms"),
        )
    })?;
    let comment = lines
        .get(at + 1)
        .ok_or_else(|| parse_error(file, at + 1, "comment line", "the file ended"))?;
    let pairs =
        key_values(comment).map_err(|reason| parse_error(file, at + 1, "comment line", reason))?;
    let mut frame = Frame::default();
    let mut properties = None;
    let mut pbc = None;
    for (key, value) in pairs {
        let field = |reason: String| parse_error(file, at + 1, &key, reason);
        match key.as_str() {
            k if k.eq_ignore_ascii_case("lattice") => {
                frame.cell = Some(matrix(&reals(&value, 9).map_err(field)?));
            }
            k if k.eq_ignore_ascii_case("properties") => {
                properties = Some(parse_properties(&value).map_err(field)?);
            }
            "pbc" => pbc = Some(logicals3(&value).map_err(field)?),
            "energy" => frame.energy = Some(reals(&value, 1).map_err(field)?[0]),
            "stress" => frame.stress = Some(stress(&value).map_err(field)?),
            "virial" => frame.virial = Some(matrix(&reals(&value, 9).map_err(field)?)),
            _ => {
                frame.info.insert(key, value);
            }
        }
    }
    frame.pbc = pbc.unwrap_or([frame.cell.is_some(); 3]);
    let properties = properties.unwrap_or_else(|| {
        vec![
            Property {
                name: "species".into(),
                kind: 'S',
                width: 1,
            },
            Property {
                name: "pos".into(),
                kind: 'R',
                width: 3,
            },
        ]
    });
    for required in ["species", "pos"] {
        if !properties.iter().any(|p| p.name == required) {
            return Err(parse_error(
                file,
                at + 1,
                "Properties",
                format!("no {required:?} column"),
            ));
        }
    }
    let width: usize = properties.iter().map(|p| p.width).sum();
    let mut columns: Vec<Column> = properties.iter().map(|p| empty_column(p.kind, n)).collect();
    for i in 0..n {
        let line_at = at + 2 + i;
        let line = lines.get(line_at).ok_or_else(|| {
            parse_error(
                file,
                line_at,
                "atoms",
                format!("the file ended after {i} of {n} atoms"),
            )
        })?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != width {
            return Err(parse_error(
                file,
                line_at,
                "atoms",
                format!("{} values, Properties has {width}", fields.len()),
            ));
        }
        let mut start = 0;
        for (p, column) in properties.iter().zip(&mut columns) {
            let values = &fields[start..start + p.width];
            start += p.width;
            push_row(column, values)
                .map_err(|reason| parse_error(file, line_at, &p.name, reason))?;
        }
    }
    for (p, column) in properties.into_iter().zip(columns) {
        match (p.name.as_str(), column) {
            ("species", Column::Str(rows)) if p.width == 1 => {
                frame.species = rows.into_iter().flatten().collect();
            }
            ("pos", Column::Real(rows)) if p.width == 3 => frame.positions = triples(rows),
            ("forces", Column::Real(rows)) if p.width == 3 => frame.forces = Some(triples(rows)),
            ("species" | "pos" | "forces", _) => {
                let want = if p.name == "species" { "S:1" } else { "R:3" };
                return Err(parse_error(
                    file,
                    at + 1,
                    "Properties",
                    format!(
                        "column {:?} must be {want}, got {}:{}",
                        p.name, p.kind, p.width
                    ),
                ));
            }
            (_, column) => frame.arrays.push((p.name, column)),
        }
    }
    Ok((frame, at + 2 + n))
}

/// The `key=value` pairs of a comment line (values unquoted; a bare key is `"T"`).
fn key_values(line: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            return Err("a value without a key".into());
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next_if_eq(&'=').is_none() {
            pairs.push((key, "T".into()));
            continue;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("the value of {key:?} has no closing quote")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        pairs.push((key, value));
    }
}

/// `name:type:width` triplets.
fn parse_properties(value: &str) -> std::result::Result<Vec<Property>, String> {
    let parts: Vec<&str> = value.split(':').collect();
    if !parts.len().is_multiple_of(3) {
        return Err(format!("{value:?} is not name:type:width triplets"));
    }
    parts
        .chunks(3)
        .map(|t| {
            let kind = match t[1] {
                "S" | "R" | "I" | "L" => t[1].chars().next().unwrap_or('S'),
                other => {
                    return Err(format!(
                        "column {:?} has type {other:?}, not S, R, I or L",
                        t[0]
                    ));
                }
            };
            let width = t[2]
                .parse()
                .ok()
                .filter(|&w: &usize| w > 0)
                .ok_or_else(|| format!("column {:?} has width {:?}", t[0], t[2]))?;
            Ok(Property {
                name: t[0].to_string(),
                kind,
                width,
            })
        })
        .collect()
}

/// Exactly `count` finite reals.
fn reals(value: &str, count: usize) -> std::result::Result<Vec<f64>, String> {
    let parsed: Vec<f64> = value
        .split_whitespace()
        .map(real)
        .collect::<std::result::Result<_, _>>()?;
    if parsed.len() != count {
        return Err(format!("{} values, expected {count}", parsed.len()));
    }
    Ok(parsed)
}

/// A finite real.
fn real(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err(format!("{s:?} is not finite")),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// A logical as ASE writes or reads it.
fn logical(s: &str) -> std::result::Result<bool, String> {
    match s {
        "T" | "True" | "true" | "TRUE" => Ok(true),
        "F" | "False" | "false" | "FALSE" => Ok(false),
        _ => Err(format!("{s:?} is not a logical (T or F)")),
    }
}

fn logicals3(value: &str) -> std::result::Result<[bool; 3], String> {
    let v: Vec<bool> = value
        .split_whitespace()
        .map(logical)
        .collect::<std::result::Result<_, _>>()?;
    <[bool; 3]>::try_from(v).map_err(|v| format!("{} values, expected 3", v.len()))
}

/// Rows of a 3x3 matrix from 9 values.
fn matrix(v: &[f64]) -> [[f64; 3]; 3] {
    [[v[0], v[1], v[2]], [v[3], v[4], v[5]], [v[6], v[7], v[8]]]
}

/// A stress from 9 values, or Voigt's 6 (xx yy zz yz xz xy).
fn stress(value: &str) -> std::result::Result<[[f64; 3]; 3], String> {
    let count = value.split_whitespace().count();
    if count == 6 {
        let v = reals(value, 6)?;
        return Ok([[v[0], v[5], v[4]], [v[5], v[1], v[3]], [v[4], v[3], v[2]]]);
    }
    reals(value, 9)
        .map(|v| matrix(&v))
        .map_err(|_| format!("{count} values, expected 9 (or Voigt's 6)"))
}

fn empty_column(kind: char, n: usize) -> Column {
    match kind {
        'R' => Column::Real(Vec::with_capacity(n)),
        'I' => Column::Int(Vec::with_capacity(n)),
        'L' => Column::Bool(Vec::with_capacity(n)),
        _ => Column::Str(Vec::with_capacity(n)),
    }
}

/// One atom's values of a column, parsed by its type.
fn push_row(column: &mut Column, values: &[&str]) -> std::result::Result<(), String> {
    match column {
        Column::Real(rows) => rows.push(
            values
                .iter()
                .map(|s| real(s))
                .collect::<std::result::Result<_, _>>()?,
        ),
        Column::Int(rows) => rows.push(
            values
                .iter()
                .map(|s| {
                    s.parse::<i64>()
                        .map_err(|_| format!("{s:?} is not an integer"))
                })
                .collect::<std::result::Result<_, _>>()?,
        ),
        Column::Bool(rows) => rows.push(
            values
                .iter()
                .map(|s| logical(s))
                .collect::<std::result::Result<_, _>>()?,
        ),
        Column::Str(rows) => rows.push(values.iter().map(|s| s.to_string()).collect()),
    }
    Ok(())
}

fn triples(rows: Vec<Vec<f64>>) -> Vec<[f64; 3]> {
    rows.into_iter().map(|r| [r[0], r[1], r[2]]).collect()
}

/// `frames` as extended XYZ text that ASE (and [`parse`]) read back exactly: reals in their
/// shortest round-trip form.
///
/// # Errors
///
/// [`Error::InvalidFrame`] for a frame whose columns do not have one row per atom, a
/// species or string value that is empty or holds whitespace, or a non-finite real.
///
/// ```
/// use equivariant_data::{Frame, extxyz};
/// let mut frame = Frame::new(vec!["Cu".into()], vec![[0.0, 0.5, 1.0]]);
/// frame.energy = Some(-3.25);
/// let text = extxyz::to_string(&[frame.clone()])?;
/// assert_eq!(extxyz::parse(&text, "round trip")?, [frame]);
/// # Ok::<(), equivariant_data::Error>(())
/// ```
pub fn to_string(frames: &[Frame]) -> Result<String> {
    let mut out = String::new();
    for (index, frame) in frames.iter().enumerate() {
        write_frame(&mut out, index, frame)?;
    }
    Ok(out)
}

/// [`to_string`] into the file at `path` (created or replaced).
///
/// # Errors
///
/// As [`to_string`], and [`Error::Io`] when the file cannot be written.
///
/// ```
/// use equivariant_data::{Frame, extxyz};
/// let path = std::env::temp_dir().join("equivariant-data-doc.xyz");
/// extxyz::write(&path, &[Frame::new(vec!["He".into()], vec![[0.0; 3]])])?;
/// assert_eq!(extxyz::read(&path)?[0].species, ["He"]);
/// # Ok::<(), equivariant_data::Error>(())
/// ```
pub fn write(path: impl AsRef<Path>, frames: &[Frame]) -> Result<()> {
    let path = path.as_ref();
    let text = to_string(frames)?;
    std::fs::write(path, text).map_err(|e| Error::Io {
        file: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn write_frame(out: &mut String, index: usize, frame: &Frame) -> Result<()> {
    let n = frame.len();
    let invalid = |field: &str, reason: String| Error::InvalidFrame {
        frame: index,
        field: field.to_string(),
        reason,
    };
    let rows = |field: &str, len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(invalid(field, format!("{len} rows for {n} atoms")))
        }
    };
    rows("positions", frame.positions.len())?;
    if let Some(f) = &frame.forces {
        rows("forces", f.len())?;
    }
    let mut reals = frame
        .positions
        .iter()
        .flatten()
        .chain(frame.forces.iter().flatten().flatten());
    if !reals.all(|x| x.is_finite()) {
        return Err(invalid("positions/forces", "a non-finite value".into()));
    }
    let matrices = [
        ("Lattice", &frame.cell),
        ("stress", &frame.stress),
        ("virial", &frame.virial),
    ];
    for (field, m) in matrices {
        if !m.iter().flatten().flatten().all(|x| x.is_finite()) {
            return Err(invalid(field, "a non-finite value".into()));
        }
    }
    if frame.energy.is_some_and(|e| !e.is_finite()) {
        return Err(invalid("energy", "not finite".into()));
    }
    let mut properties = String::from("species:S:1:pos:R:3");
    for (name, column) in &frame.arrays {
        rows(name, column.len())?;
        let (kind, width) = column_type(name, column).map_err(|reason| invalid(name, reason))?;
        let _ = write!(properties, ":{name}:{kind}:{width}");
    }
    if frame.forces.is_some() {
        properties.push_str(":forces:R:3");
    }
    let _ = writeln!(out, "{n}");
    let mut comment = Vec::new();
    if let Some(cell) = &frame.cell {
        comment.push(format!("Lattice={}", quoted(&join(cell.iter().flatten()))));
    }
    comment.push(format!("Properties={properties}"));
    if let Some(e) = frame.energy {
        comment.push(format!("energy={e}"));
    }
    if let Some(s) = &frame.stress {
        comment.push(format!("stress={}", quoted(&join(s.iter().flatten()))));
    }
    if let Some(v) = &frame.virial {
        comment.push(format!("virial={}", quoted(&join(v.iter().flatten()))));
    }
    for (key, value) in &frame.info {
        if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == '=' || c == '"') {
            return Err(invalid("info", format!("key {key:?} cannot be written")));
        }
        comment.push(format!("{key}={}", quoted(value)));
    }
    let pbc: Vec<&str> = frame
        .pbc
        .iter()
        .map(|&p| if p { "T" } else { "F" })
        .collect();
    comment.push(format!("pbc={}", quoted(&pbc.join(" "))));
    let _ = writeln!(out, "{}", comment.join(" "));
    for i in 0..n {
        let species = &frame.species[i];
        if species.is_empty() || species.contains(char::is_whitespace) {
            return Err(invalid("species", format!("{species:?} cannot be written")));
        }
        let mut line = format!("{species} {}", join(frame.positions[i]));
        for (name, column) in &frame.arrays {
            let values = match column {
                Column::Real(v) => {
                    if v[i].iter().any(|x| !x.is_finite()) {
                        return Err(invalid(name, "a non-finite value".into()));
                    }
                    join(&v[i])
                }
                Column::Int(v) => join(&v[i]),
                Column::Bool(v) => v[i]
                    .iter()
                    .map(|&b| if b { "T" } else { "F" })
                    .collect::<Vec<_>>()
                    .join(" "),
                Column::Str(v) => {
                    if v[i]
                        .iter()
                        .any(|s| s.is_empty() || s.contains(char::is_whitespace))
                    {
                        return Err(invalid(
                            name,
                            "an empty string or one with whitespace".into(),
                        ));
                    }
                    v[i].join(" ")
                }
            };
            let _ = write!(line, " {values}");
        }
        if let Some(f) = &frame.forces {
            let _ = write!(line, " {}", join(f[i]));
        }
        let _ = writeln!(out, "{line}");
    }
    Ok(())
}

/// A kept column's type letter and width as `Properties` names it, or why it cannot be
/// written: a name that is not one word or is a recognized column, rows of different or zero
/// widths.
fn column_type(name: &str, column: &Column) -> std::result::Result<(char, usize), String> {
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ':' || c == '"') {
        return Err(format!("the column name {name:?} cannot be written"));
    }
    if ["species", "pos", "forces"].contains(&name) {
        return Err(format!(
            "{name:?} is a field of the frame, not a kept column"
        ));
    }
    fn widths<T>(rows: &[Vec<T>]) -> Vec<usize> {
        rows.iter().map(Vec::len).collect()
    }
    let (kind, widths) = match column {
        Column::Real(v) => ('R', widths(v)),
        Column::Int(v) => ('I', widths(v)),
        Column::Bool(v) => ('L', widths(v)),
        Column::Str(v) => ('S', widths(v)),
    };
    let width = widths.first().copied().unwrap_or(1);
    if width == 0 || widths.iter().any(|&w| w != width) {
        return Err("rows must share one width of at least 1".into());
    }
    Ok((kind, width))
}

/// Values separated by spaces.
fn join<T: std::fmt::Display>(values: impl IntoIterator<Item = T>) -> String {
    values
        .into_iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A value as the comment line needs it: bare, or in double quotes with `"` and `\`
/// escaped when it is empty or holds whitespace, `=` or a quote.
fn quoted(value: &str) -> String {
    if !value.is_empty()
        && !value.contains(|c: char| c.is_whitespace() || c == '=' || c == '"' || c == '\\')
    {
        return value.to_string();
    }
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}
