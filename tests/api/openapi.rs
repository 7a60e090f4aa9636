//! Aurinko's official OpenAPI document as a checker of real HTTP traffic:
//! which operation a request is, whether its path, query and body are what
//! the spec declares, and whether a response body matches the schema the
//! spec gives for that operation and status.
//!
//! The document is OpenAPI 3.0, whose schema dialect is JSON Schema draft 4
//! plus `nullable`; the one translation done here is `nullable: true` into
//! a `"null"` type, everything else is left to the `jsonschema` crate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Value, json};

/// Where the spec is looked for: `AURINKO_OPENAPI_SPEC`, else the shared
/// material beside the checkout (`../shared/aurinko-openapi/openapi.yaml`).
pub fn locate() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("AURINKO_OPENAPI_SPEC") {
        return Some(PathBuf::from(path));
    }
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/aurinko-openapi/openapi.yaml");
    beside.exists().then_some(beside)
}

pub struct Spec {
    /// The whole document, with `nullable` translated, as the root every
    /// `$ref` resolves against.
    document: Value,
    operations: Vec<Operation>,
    /// Compiled validators by schema pointer; compiling is the slow part.
    validators: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

/// One operation: a method on a path template.
#[derive(Debug)]
pub struct Operation {
    pub id: String,
    pub method: String,
    /// Path segments: literal text, or the name of a `{parameter}`.
    segments: Vec<Segment>,
    parameters: Vec<Parameter>,
    /// JSON schema of the request body, when the operation takes one.
    request_body: Option<Value>,
    /// Response schemas by status (`"200"`, `"default"`, ...); `None` for a
    /// response the spec declares without a JSON body.
    responses: HashMap<String, Option<Value>>,
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Parameter(String),
}

#[derive(Debug)]
struct Parameter {
    name: String,
    location: String,
    required: bool,
    schema: Value,
}

impl Spec {
    pub fn load(path: &Path) -> Result<Spec, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut document: Value = serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        translate_nullable(&mut document);
        let mut operations = Vec::new();
        let paths = document["paths"].as_object().ok_or("the spec has no paths")?;
        for (template, item) in paths {
            let shared = item.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
            let Some(item) = item.as_object() else { continue };
            for (method, op) in item {
                if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    continue;
                }
                operations.push(Operation::read(&document, template, method, op, &shared)?);
            }
        }
        Ok(Spec { document, operations, validators: Mutex::new(HashMap::new()) })
    }

    /// The operation a request is, by method and path. A literal segment
    /// wins over a template one (`/email/folders/wellKnown` is not a folder).
    pub fn operation(&self, method: &str, path: &str) -> Option<(&Operation, HashMap<String, String>)> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.operations
            .iter()
            .filter(|op| op.method.eq_ignore_ascii_case(method) && op.segments.len() == segments.len())
            .filter(|op| {
                op.segments.iter().zip(&segments).all(|(t, s)| match t {
                    Segment::Literal(t) => t == s,
                    Segment::Parameter(_) => !s.is_empty(),
                })
            })
            .max_by_key(|op| op.segments.iter().filter(|s| matches!(s, Segment::Literal(_))).count())
            .map(|op| (op, op.path_values(&segments)))
    }

    /// Problems with a request: unknown query parameters, missing required
    /// ones, values their schema refuses, a body its schema refuses.
    pub fn check_request(
        &self,
        op: &Operation,
        path_values: &HashMap<String, String>,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        for p in op.parameters.iter().filter(|p| p.location == "path") {
            match path_values.get(&p.name) {
                Some(value) => problems.extend(self.check_text(&p.schema, value, &format!("path {}", p.name))),
                None => problems.push(format!("path parameter {} missing", p.name)),
            }
        }
        for (name, value) in query {
            match op.parameters.iter().find(|p| p.location == "query" && &p.name == name) {
                None => problems.push(format!("query parameter {name} is not in the spec")),
                Some(p) => problems.extend(self.check_text(&p.schema, value, &format!("query {name}"))),
            }
            if query.iter().filter(|(n, _)| n == name).count() > 1 {
                problems.push(format!("query parameter {name} given more than once"));
            }
        }
        for p in op.parameters.iter().filter(|p| p.location == "query" && p.required) {
            if !query.iter().any(|(name, _)| name == &p.name) {
                problems.push(format!("required query parameter {} missing", p.name));
            }
        }
        match (&op.request_body, body) {
            (Some(schema), Some(body)) => problems.extend(self.check(schema, body, "request body")),
            (None, Some(_)) => problems.push("a body where the spec takes none".to_string()),
            _ => {}
        }
        problems
    }

    /// Problems with a response body. Statuses the operation declares
    /// without a schema, and errors it does not declare, are held to
    /// `ApiRequestFailed`, the body the spec's "Handling errors" section
    /// gives every failure.
    pub fn check_response(&self, op: &Operation, status: u16, body: &[u8]) -> Vec<String> {
        let declared = op.responses.get(&status.to_string()).or_else(|| op.responses.get("default"));
        let schema = match declared {
            Some(Some(schema)) => schema.clone(),
            _ if status >= 400 => json!({ "$ref": "#/components/schemas/ApiRequestFailed" }),
            Some(None) => return Vec::new(),
            None => return vec![format!("status {status} is not declared for {}", op.id)],
        };
        match serde_json::from_slice::<Value>(body) {
            Ok(value) => self.check(&schema, &value, &format!("{} {status} body", op.id)),
            Err(e) => vec![format!("{} {status}: the body is not JSON: {e}", op.id)],
        }
    }

    /// A parameter's text, read as its schema's type says, against the schema. An array
    /// (`authorize`'s `scopes`) is the "space separated list" its description says, one
    /// parameter, as Aurinko's documentation sends it.
    fn check_text(&self, schema: &Value, text: &str, what: &str) -> Vec<String> {
        let schema = self.resolve(schema);
        let types = schema_types(&schema);
        let value = if types.iter().any(|t| t == "array") {
            Value::Array(text.split(' ').filter(|item| !item.is_empty()).map(Value::from).collect())
        } else if types.iter().any(|t| t == "integer") {
            text.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(text))
        } else if types.iter().any(|t| t == "boolean") {
            match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::from(text),
            }
        } else {
            Value::from(text)
        };
        self.check(&schema, &value, what)
    }

    fn resolve(&self, schema: &Value) -> Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(pointer) => self.document.pointer(pointer.trim_start_matches('#')).cloned().unwrap_or(Value::Null),
            None => schema.clone(),
        }
    }

    fn check(&self, schema: &Value, value: &Value, what: &str) -> Vec<String> {
        let validator = match self.validator(schema) {
            Ok(v) => v,
            Err(e) => return vec![format!("{what}: the spec's schema does not compile: {e}")],
        };
        validator.iter_errors(value).take(10).map(|e| format!("{what}: {} at {}", e, e.instance_path())).collect()
    }

    fn validator(&self, schema: &Value) -> Result<std::sync::Arc<jsonschema::Validator>, String> {
        let key = schema.to_string();
        let mut cache = self.validators.lock().unwrap();
        if let Some(v) = cache.get(&key) {
            return Ok(v.clone());
        }
        // The schema sits in a copy of the document, so its references
        // resolve against the spec's components.
        let mut root = json!({ "components": self.document["components"].clone() });
        root["allOf"] = json!([schema]);
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| e.to_string())?;
        let validator = std::sync::Arc::new(validator);
        cache.insert(key, validator.clone());
        Ok(validator)
    }
}

impl Operation {
    fn read(document: &Value, template: &str, method: &str, op: &Value, shared: &[Value]) -> Result<Operation, String> {
        let resolve = |v: &Value| match v.get("$ref").and_then(Value::as_str) {
            Some(pointer) => document.pointer(pointer.trim_start_matches('#')).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        };
        let id = op["operationId"].as_str().unwrap_or(template).to_string();
        let declared = op.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
        let parameters = shared
            .iter()
            .chain(&declared)
            .map(|p| {
                let p = resolve(p);
                Parameter {
                    name: p["name"].as_str().unwrap_or_default().to_string(),
                    location: p["in"].as_str().unwrap_or_default().to_string(),
                    required: p["required"].as_bool().unwrap_or(false),
                    schema: p.get("schema").cloned().unwrap_or(json!({})),
                }
            })
            .collect();
        let json_schema = |content: &Value| {
            content.as_object().and_then(|c| {
                c.iter()
                    .find(|(media, _)| media.starts_with("application/json"))
                    .and_then(|(_, m)| m.get("schema").cloned())
            })
        };
        let request_body = op.get("requestBody").map(resolve).and_then(|b| json_schema(&b["content"]));
        let mut responses = HashMap::new();
        for (status, response) in op["responses"].as_object().into_iter().flatten() {
            responses.insert(status.clone(), json_schema(&resolve(response)["content"]));
        }
        let segments = template
            .trim_start_matches('/')
            .split('/')
            .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => Segment::Parameter(name.to_string()),
                None => Segment::Literal(s.to_string()),
            })
            .collect();
        Ok(Operation { id, method: method.to_string(), segments, parameters, request_body, responses })
    }

    /// Values of the template's `{parameter}` segments, percent-decoded.
    fn path_values(&self, segments: &[&str]) -> HashMap<String, String> {
        self.segments
            .iter()
            .zip(segments)
            .filter_map(|(t, value)| match t {
                Segment::Parameter(name) => Some((name.clone(), percent_decode(value))),
                Segment::Literal(_) => None,
            })
            .collect()
    }
}

/// OpenAPI 3.0's `nullable: true` is JSON Schema's `"null"` among the types.
fn translate_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("nullable") == Some(&Value::Bool(true)) {
                match map.get("type").cloned() {
                    Some(Value::String(t)) => {
                        map.insert("type".into(), json!([t, "null"]));
                        // An enum must admit null too, or the type is moot.
                        if let Some(Value::Array(values)) = map.get_mut("enum") {
                            values.push(Value::Null);
                        }
                    }
                    None if map.contains_key("$ref") => {
                        let reference = map.remove("$ref").unwrap_or_default();
                        map.insert("anyOf".into(), json!([{ "$ref": reference }, { "type": "null" }]));
                    }
                    _ => {}
                }
            }
            map.values_mut().for_each(translate_nullable);
        }
        Value::Array(items) => items.iter_mut().for_each(translate_nullable),
        _ => {}
    }
}

fn schema_types(schema: &Value) -> Vec<String> {
    match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// Percent-decoding of a path segment (where `+` is itself).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
