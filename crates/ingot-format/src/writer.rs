//! [`GgufWriter`]: streaming, atomic, checksummed GGUF writing.
//!
//! 1. Declare: metadata ([`GgufWriter::add_kv`]) and every tensor's name, shape and type
//!    ([`GgufWriter::add_tensor`]). Each tensor's offset is then known: the previous offset plus
//!    the previous size rounded up to the alignment (what llama.cpp's `gguf_add_tensor` and
//!    gguf-py's `GGUFWriter` compute), so the header can be written before any data exists.
//! 2. Stream: tensor bytes in declaration order, whole ([`GgufWriter::write_tensor`]), in
//!    pieces ([`GgufWriter::write_tensor_chunk`]) or from a reader
//!    ([`GgufWriter::write_tensor_from`]). Each tensor is followed by zero padding to the
//!    alignment (the last one too, as llama.cpp and gguf-py do). Bytes are hashed as they pass.
//! 3. [`GgufWriter::finish`]: the reserved integrity values are patched into the header, the
//!    file is fsynced and renamed over the destination, and the directory is fsynced.
//!
//! Writeback starts early: every [`WRITEBACK_STEP`] bytes a background thread `fdatasync`s the
//! temp file (through its own handle) while streaming continues, so the final fsync only waits
//! for the last step instead of the whole file (for a 100 MB output the final fsync went from
//! ≈ 46 ms to the tail's share; the durability guarantee is unchanged, and an error from a
//! background sync fails `finish`, because after a failed fsync Linux may report the next one
//! as successful).
//!
//! Everything is written to a temp file in the destination's directory (so the rename is
//! atomic); an error or dropping the writer before `finish` deletes it. The destination is
//! never touched until the file is complete.
//!
//! A process killed outright (SIGKILL, power loss) cannot delete its temp file. Temp names
//! therefore carry the writer's process id, `.{dest name}.ingot-tmp.{pid}.{n}`, and when a
//! writer starts streaming it removes every such file in the destination's directory whose
//! process no longer exists (checked through `/proc/{pid}`; where `/proc` is not available,
//! nothing is removed). Temps of live processes, including this one's other writers, are left
//! alone. Caveat: a writer running in another PID namespace (another container sharing the
//! directory) looks dead from here; its temp would be removed and its `finish` would then fail
//! with an error, never with a corrupt destination.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{At, FormatError, Result};
use crate::file::GgufFile;
use crate::integrity::{
    self, DATA_BLAKE3_KEY, HEADER_BLAKE3_KEY, RESERVED_PREFIX, TENSOR_XXH3_KEY,
};
use crate::parse::{align_up, tensor_n_bytes, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC};
use crate::split::{self, SPLIT_COUNT, SPLIT_NO, SPLIT_TENSORS_COUNT};
use crate::types::GgmlType;
use crate::value::{encode_str, Value, ValueType};
use crate::{MAX_DIMS, MAX_TENSOR_NAME_WRITE, WRITE_VERSION};

/// Buffer size for file writes and for copying from readers.
const IO_BUFFER: usize = 1 << 20;
/// Bytes written between background `fdatasync`s of the temp file (see the module docs).
const WRITEBACK_STEP: u64 = 32 << 20;
/// Zeros for padding (alignment is at most 2^31, but padding is written in pieces).
const ZEROS: [u8; 4096] = [0; 4096];

/// When to start a new shard. With neither limit set, one file is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SplitPolicy {
    /// Start a new shard before a tensor whose (padded) bytes would take the shard's data
    /// section past this many bytes (a single larger tensor gets a shard of its own), like
    /// llama.cpp's `gguf-split --split-max-size`.
    pub max_bytes: Option<u64>,
    /// At most this many tensors per shard (`gguf-split --split-max-tensors`).
    pub max_tensors: Option<usize>,
}

/// Writer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Store `ingot.integrity.*` digests (default on). Off gives files byte-identical to
    /// llama.cpp's for the same metadata and tensors.
    pub integrity: bool,
    /// Splitting into shards (default: one file).
    pub split: SplitPolicy,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            integrity: true,
            split: SplitPolicy::default(),
        }
    }
}

#[derive(Debug)]
struct Decl {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    n_bytes: u64,
}

/// One output file being written.
struct OpenShard {
    file: BufWriter<File>,
    temp: PathBuf,
    /// Header positions of the reserved integrity payloads.
    xxh3_at: Option<u64>,
    blake3_at: Option<u64>,
    blake: blake3::Hasher,
    digests: Vec<u64>,
    /// Bytes written since the last background sync was started.
    unsynced: u64,
    /// The background sync in flight, if any.
    syncing: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl OpenShard {
    /// Counts `n` written bytes and, every [`WRITEBACK_STEP`], starts a background
    /// `fdatasync` unless one is still running. Errors of finished syncs surface here.
    fn note_written(&mut self, n: u64) -> Result<()> {
        self.unsynced += n;
        if self.unsynced < WRITEBACK_STEP || self.syncing.as_ref().is_some_and(|h| !h.is_finished())
        {
            return Ok(());
        }
        self.join_sync()?;
        // A second handle to the same open file: syncing it syncs the file. Failing to get
        // one only loses the early start; the final fsync still covers everything.
        if let Ok(f) = self.file.get_ref().try_clone() {
            self.syncing = Some(std::thread::spawn(move || f.sync_data()));
            self.unsynced = 0;
        }
        Ok(())
    }

    /// Waits for the background sync in flight, reporting its error.
    fn join_sync(&mut self) -> Result<()> {
        match self.syncing.take().map(|h| h.join()) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(io("fsyncing", &self.temp, e)),
            Some(Err(_)) => Err(io(
                "fsyncing",
                &self.temp,
                std::io::Error::other("background sync thread panicked"),
            )),
        }
    }
}

struct Stream {
    /// Tensor index ranges, one per shard.
    shards: Vec<std::ops::Range<usize>>,
    /// Final paths, one per shard.
    finals: Vec<PathBuf>,
    /// Temp files created so far (completed ones, plus the open one).
    temps: Vec<PathBuf>,
    open: Option<OpenShard>,
    next_shard: usize,
    next_tensor: usize,
    written: u64,
    xxh: xxhash_rust::xxh3::Xxh3,
}

enum Phase {
    Declaring,
    Streaming(Box<Stream>),
    Failed,
    Done,
}

/// A streaming GGUF writer. See the module docs for the three phases.
///
/// ```no_run
/// use ingot_format::{GgufWriter, GgmlType};
/// let mut w = GgufWriter::new("out.gguf");
/// w.add_kv("general.architecture", "llama")?;
/// w.add_tensor("a", &[4, 2], GgmlType::F32)?;
/// w.write_tensor(&[0u8; 32])?;
/// w.finish()?;
/// # Ok::<(), ingot_format::FormatError>(())
/// ```
pub struct GgufWriter {
    dest: PathBuf,
    opts: WriterOptions,
    kvs: Vec<(String, Value)>,
    keys: HashMap<String, usize>,
    decls: Vec<Decl>,
    names: HashSet<String>,
    phase: Phase,
}

impl std::fmt::Debug for GgufWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufWriter")
            .field("dest", &self.dest)
            .field("kvs", &self.kvs.len())
            .field("tensors", &self.decls.len())
            .finish()
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Marks a writer's temp file: `.{dest name}{TEMP_INFIX}{pid}.{n}`.
const TEMP_INFIX: &str = ".ingot-tmp.";

/// The writer process id in a temp file name of ours, or `None` for any other name.
fn temp_pid(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    let (_, tail) = rest.rsplit_once(TEMP_INFIX)?;
    let (pid, n) = tail.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(n))
        .then(|| pid.parse().ok())
        .flatten()
}

/// Removes temp files left in `dir` by writers whose process has died (see the module docs).
/// Best effort: an unreadable directory or a failed removal is not an error (the temp files
/// never affect the destination; they only waste space).
fn remove_stale_temps(dir: &Path) {
    let proc_dir = Path::new("/proc");
    if !proc_dir.join("self").exists() {
        return; // no way to tell dead processes from live ones
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = std::process::id();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(temp_pid) else {
            continue;
        };
        if pid != me && !proc_dir.join(pid.to_string()).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

impl GgufWriter {
    /// A writer for `dest` with default options. Nothing is created until data is streamed
    /// (or `finish` is called).
    pub fn new(dest: impl AsRef<Path>) -> GgufWriter {
        Self::with_options(dest, WriterOptions::default())
    }

    /// A writer for `dest` with `opts`.
    pub fn with_options(dest: impl AsRef<Path>, opts: WriterOptions) -> GgufWriter {
        GgufWriter {
            dest: dest.as_ref().to_path_buf(),
            opts,
            kvs: Vec::new(),
            keys: HashMap::new(),
            decls: Vec::new(),
            names: HashSet::new(),
            phase: Phase::Declaring,
        }
    }

    fn declaring(&self) -> Result<()> {
        match self.phase {
            Phase::Declaring => Ok(()),
            _ => Err(FormatError::WriterState {
                what: "declaring metadata or tensors after tensor data was written",
            }),
        }
    }

    /// Adds a metadata pair (written in call order). Keys must be non-empty and unique;
    /// `ingot.integrity.*` is reserved while integrity is on. `general.alignment` must be a
    /// u32 power of two and sets the alignment.
    pub fn add_kv(&mut self, key: &str, value: impl Into<Value>) -> Result<()> {
        self.declaring()?;
        let value = value.into();
        if key.is_empty() {
            return Err(FormatError::EmptyKey {
                at: At::Declaration,
            });
        }
        if self.opts.integrity && key.starts_with(RESERVED_PREFIX) {
            return Err(FormatError::ReservedKey {
                key: key.to_owned(),
            });
        }
        if self.keys.contains_key(key) {
            return Err(FormatError::DuplicateKey {
                key: key.to_owned(),
                at: At::Declaration,
            });
        }
        if key == ALIGNMENT_KEY {
            check_alignment(&value)?;
        }
        self.keys.insert(key.to_owned(), self.kvs.len());
        self.kvs.push((key.to_owned(), value));
        Ok(())
    }

    /// Sets `general.alignment` (adding the key, or replacing its value).
    pub fn set_alignment(&mut self, alignment: u32) -> Result<()> {
        self.declaring()?;
        let v = Value::U32(alignment);
        check_alignment(&v)?;
        match self.keys.get(ALIGNMENT_KEY) {
            Some(&i) => self.kvs[i].1 = v,
            None => self.add_kv(ALIGNMENT_KEY, v)?,
        }
        Ok(())
    }

    /// Copies every metadata pair of `file` in order, except `split.*` keys (the writer sets
    /// its own) and `ingot.integrity.*` (digests of the source's data, wrong for new data; the
    /// writer computes its own when integrity is on).
    pub fn copy_metadata_from(&mut self, file: &GgufFile) -> Result<()> {
        for (k, v) in file.metadata() {
            if [SPLIT_NO, SPLIT_COUNT, SPLIT_TENSORS_COUNT].contains(&k)
                || k.starts_with(RESERVED_PREFIX)
            {
                continue;
            }
            self.add_kv(k, v.clone())?;
        }
        Ok(())
    }

    /// Declares the next tensor: `shape` in ggml order (`shape[0]` = elements per row).
    /// Checks the same rules as the reader, plus llama.cpp's 63-byte name limit.
    pub fn add_tensor(&mut self, name: &str, shape: &[u64], ty: GgmlType) -> Result<()> {
        self.declaring()?;
        if name.len() > MAX_TENSOR_NAME_WRITE {
            return Err(FormatError::TensorNameTooLong {
                at: At::Declaration,
                len: name.len() as u64,
                max: MAX_TENSOR_NAME_WRITE,
            });
        }
        if self.names.contains(name) {
            return Err(FormatError::DuplicateTensor {
                tensor: name.to_owned(),
                at: At::Declaration,
            });
        }
        let n_bytes = tensor_n_bytes(name, shape, ty, At::Declaration)?;
        self.names.insert(name.to_owned());
        self.decls.push(Decl {
            name: name.to_owned(),
            dims: shape.to_vec(),
            ty,
            n_bytes,
        });
        Ok(())
    }

    /// The alignment in effect.
    pub fn alignment(&self) -> u64 {
        match self.keys.get(ALIGNMENT_KEY).map(|&i| &self.kvs[i].1) {
            Some(Value::U32(a)) => u64::from(*a),
            _ => DEFAULT_ALIGNMENT,
        }
    }

    /// Declared byte size of tensor `name`, if declared.
    pub fn tensor_n_bytes(&self, name: &str) -> Option<u64> {
        self.decls
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.n_bytes)
    }

    /// Name of the tensor whose bytes are expected next, or `None` when all are written.
    pub fn next_tensor(&self) -> Option<&str> {
        let i = match &self.phase {
            Phase::Declaring => 0,
            Phase::Streaming(s) => s.next_tensor,
            _ => return None,
        };
        self.decls.get(i).map(|d| d.name.as_str())
    }

    /// Writes the whole of the next tensor's bytes; `bytes.len()` must equal its declared size.
    pub fn write_tensor(&mut self, bytes: &[u8]) -> Result<()> {
        self.ensure_streaming()?;
        let (written, idx) = match &self.phase {
            Phase::Streaming(s) => (s.written, s.next_tensor),
            _ => unreachable_state()?,
        };
        match self.decls.get(idx) {
            Some(d) if written == 0 && bytes.len() as u64 == d.n_bytes => {
                self.write_tensor_chunk(bytes)
            }
            Some(d) => {
                let e = FormatError::TensorSizeMismatch {
                    tensor: d.name.clone(),
                    expected: d.n_bytes,
                    got: written + bytes.len() as u64,
                };
                self.fail();
                Err(e)
            }
            None => self.write_tensor_chunk(bytes),
        }
    }

    /// Appends `bytes` to the tensor being written; the tensor is complete when its declared
    /// size has been given, and the next call starts the next tensor. A chunk that would run
    /// past the declared size is an error.
    pub fn write_tensor_chunk(&mut self, bytes: &[u8]) -> Result<()> {
        self.ensure_streaming()?;
        let r = self.chunk(bytes);
        if r.is_err() {
            self.fail();
        }
        r
    }

    /// Reads the next tensor's bytes from `reader`: exactly its declared size (extra bytes
    /// in the reader are left unread; too few is [`FormatError::TensorSizeMismatch`]).
    pub fn write_tensor_from(&mut self, mut reader: impl Read) -> Result<()> {
        self.ensure_streaming()?;
        let (idx, already) = match &self.phase {
            Phase::Streaming(s) => (s.next_tensor, s.written),
            _ => unreachable_state()?,
        };
        let Some(d) = self.decls.get(idx) else {
            self.fail();
            return Err(FormatError::WriterState {
                what: "writing more tensors than were declared",
            });
        };
        let (name, total) = (d.name.clone(), d.n_bytes);
        let mut left = total - already;
        let mut buf = vec![0u8; IO_BUFFER.min(left as usize).max(1)];
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = match reader.read(&mut buf[..want]) {
                Ok(0) => {
                    self.fail();
                    return Err(FormatError::TensorSizeMismatch {
                        tensor: name,
                        expected: total,
                        got: total - left,
                    });
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    self.fail();
                    return Err(FormatError::Io {
                        op: "reading tensor data for",
                        path: self.dest.clone(),
                        source,
                    });
                }
            };
            self.write_tensor_chunk(&buf[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Completes the file(s): checks every tensor was written, patches the integrity digests,
    /// fsyncs, renames into place and fsyncs the directory. Returns the paths written (one,
    /// or one per shard).
    pub fn finish(mut self) -> Result<Vec<PathBuf>> {
        self.ensure_streaming()?;
        let r = self.finish_inner();
        match r {
            Ok(paths) => {
                self.phase = Phase::Done;
                Ok(paths)
            }
            Err(e) => {
                self.fail();
                Err(e)
            }
        }
    }

    fn finish_inner(&mut self) -> Result<Vec<PathBuf>> {
        let total = self.decls.len();
        let Phase::Streaming(s) = &mut self.phase else {
            return unreachable_state();
        };
        if s.next_tensor < total || s.written > 0 {
            return Err(FormatError::MissingTensorData {
                next: self.decls[s.next_tensor].name.clone(),
                missing: total - s.next_tensor,
                total,
            });
        }
        // Zero-tensor shards (only possible for an empty model) are opened and closed here.
        while s.next_shard < s.shards.len() {
            let i = s.next_shard;
            open_shard(&self.dest, &self.opts, &self.kvs, &self.decls, s, i)?;
            close_shard(s)?;
        }
        for (temp, fin) in s.temps.iter().zip(&s.finals) {
            std::fs::rename(temp, fin).map_err(|source| FormatError::Io {
                op: "renaming the temp file onto",
                path: fin.clone(),
                source,
            })?;
        }
        // Make the renames durable. Not every file system can fsync a directory; the data
        // itself is already synced, so a failure here is not reported.
        if let Ok(d) = File::open(dir_of(&self.dest)) {
            let _ = d.sync_all();
        }
        s.temps.clear();
        Ok(s.finals.clone())
    }

    /// Marks the writer failed and deletes its temp files.
    fn fail(&mut self) {
        if let Phase::Streaming(s) = std::mem::replace(&mut self.phase, Phase::Failed) {
            remove_temps(*s);
        }
    }

    fn ensure_streaming(&mut self) -> Result<()> {
        match self.phase {
            Phase::Streaming(_) => Ok(()),
            Phase::Failed => Err(FormatError::WriterState {
                what: "using a writer after an earlier error",
            }),
            Phase::Done => Err(FormatError::WriterState {
                what: "using a finished writer",
            }),
            Phase::Declaring => {
                remove_stale_temps(&dir_of(&self.dest));
                let stream = self.plan()?;
                self.phase = Phase::Streaming(Box::new(stream));
                Ok(())
            }
        }
    }

    /// Assigns tensors to shards and names the output files.
    fn plan(&self) -> Result<Stream> {
        let align = self.alignment();
        let SplitPolicy {
            max_bytes,
            max_tensors,
        } = self.opts.split;
        let mut shards: Vec<std::ops::Range<usize>> = Vec::new();
        shards.push(0..0);
        let mut size = 0u64;
        for (i, d) in self.decls.iter().enumerate() {
            let padded = align_up(d.n_bytes, align).unwrap_or(u64::MAX);
            let cur = shards.last_mut().expect("shards starts non-empty");
            let full_count = max_tensors.is_some_and(|m| cur.len() >= m.max(1));
            let full_size = max_bytes.is_some_and(|m| size.saturating_add(padded) > m);
            if cur.start != cur.end && (full_count || full_size) {
                shards.push(i..i + 1);
                size = padded;
            } else {
                cur.end = i + 1;
                size = size.saturating_add(padded);
            }
        }
        let finals = if shards.len() == 1 {
            vec![self.dest.clone()]
        } else {
            let prefix = split::prefix_of(&self.dest);
            (0..shards.len())
                .map(|i| split::shard_path(&prefix, i, shards.len()))
                .collect()
        };
        if shards.len() > usize::from(u16::MAX) {
            return Err(FormatError::WriterState {
                what: "more than 65535 shards",
            });
        }
        Ok(Stream {
            shards,
            finals,
            temps: Vec::new(),
            open: None,
            next_shard: 0,
            next_tensor: 0,
            written: 0,
            xxh: xxhash_rust::xxh3::Xxh3::new(),
        })
    }

    fn chunk(&mut self, bytes: &[u8]) -> Result<()> {
        let align = self.alignment();
        let Phase::Streaming(s) = &mut self.phase else {
            return unreachable_state();
        };
        let Some(d) = self.decls.get(s.next_tensor) else {
            return Err(FormatError::WriterState {
                what: "writing more tensors than were declared",
            });
        };
        let left = d.n_bytes - s.written;
        if bytes.len() as u64 > left {
            return Err(FormatError::TensorSizeMismatch {
                tensor: d.name.clone(),
                expected: d.n_bytes,
                got: s.written + bytes.len() as u64,
            });
        }
        if s.open.is_none() {
            let i = s.next_shard;
            open_shard(&self.dest, &self.opts, &self.kvs, &self.decls, s, i)?;
        }
        let o = s.open.as_mut().expect("a shard was opened above");
        o.file
            .write_all(bytes)
            .map_err(|e| io("writing", &o.temp, e))?;
        o.blake.update(bytes);
        o.note_written(bytes.len() as u64)?;
        s.xxh.update(bytes);
        s.written += bytes.len() as u64;
        if s.written == d.n_bytes {
            // align_up cannot overflow: n_bytes <= i64::MAX and align <= 2^31.
            let pad = align_up(d.n_bytes, align).unwrap_or(d.n_bytes) - d.n_bytes;
            write_zeros(o, pad)?;
            o.digests.push(s.xxh.digest());
            s.xxh.reset();
            s.written = 0;
            s.next_tensor += 1;
            if s.next_tensor == s.shards[s.next_shard - 1].end {
                close_shard(s)?;
            }
        }
        Ok(())
    }
}

impl Drop for GgufWriter {
    fn drop(&mut self) {
        self.fail();
    }
}

fn unreachable_state<T>() -> Result<T> {
    Err(FormatError::WriterState {
        what: "internal: writer not streaming",
    })
}

fn check_alignment(v: &Value) -> Result<()> {
    match v {
        Value::U32(a) if a.is_power_of_two() => Ok(()),
        Value::U32(a) => Err(FormatError::BadAlignment {
            at: At::Declaration,
            alignment: u64::from(*a),
        }),
        other => Err(FormatError::WrongType {
            key: ALIGNMENT_KEY.to_owned(),
            expected: "u32",
            found: other.type_name(),
        }),
    }
}

fn io(op: &'static str, path: &Path, source: std::io::Error) -> FormatError {
    FormatError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn dir_of(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn write_zeros(o: &mut OpenShard, mut n: u64) -> Result<()> {
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        o.file
            .write_all(&ZEROS[..k])
            .map_err(|e| io("writing", &o.temp, e))?;
        o.blake.update(&ZEROS[..k]);
        n -= k as u64;
    }
    Ok(())
}

fn encode_kv(out: &mut Vec<u8>, key: &str, v: &Value) {
    encode_str(key, out);
    out.extend_from_slice(&v.value_type().id().to_le_bytes());
    v.encode(out);
}

/// Creates shard `i`'s temp file and writes its header.
fn open_shard(
    dest: &Path,
    opts: &WriterOptions,
    kvs: &[(String, Value)],
    decls: &[Decl],
    s: &mut Stream,
    i: usize,
) -> Result<()> {
    let range = s.shards[i].clone();
    let n_shards = s.shards.len();
    let split = n_shards > 1;
    let align = match kvs.iter().find(|(k, _)| k == ALIGNMENT_KEY) {
        Some((_, Value::U32(a))) => u64::from(*a),
        _ => DEFAULT_ALIGNMENT,
    };

    let mut h = Vec::with_capacity(4096);
    h.extend_from_slice(&MAGIC);
    h.extend_from_slice(&WRITE_VERSION.to_le_bytes());
    h.extend_from_slice(&(range.len() as u64).to_le_bytes());
    let n_kv_at = h.len();
    h.extend_from_slice(&0u64.to_le_bytes()); // patched below
    let mut n_kv = 0u64;
    if split {
        encode_kv(&mut h, SPLIT_NO, &Value::U16(i as u16));
        encode_kv(&mut h, SPLIT_COUNT, &Value::U16(n_shards as u16));
        let total = i32::try_from(decls.len()).map_err(|_| FormatError::WriterState {
            what: "split.tensors.count does not fit in i32",
        })?;
        encode_kv(&mut h, SPLIT_TENSORS_COUNT, &Value::I32(total));
        n_kv += 3;
    }
    for (k, v) in kvs {
        let skip_split =
            split && [SPLIT_NO, SPLIT_COUNT, SPLIT_TENSORS_COUNT].contains(&k.as_str());
        // Later shards carry only the split keys (as gguf-split does), plus the alignment,
        // which each file's own offsets depend on.
        let later = split && i > 0 && k != ALIGNMENT_KEY;
        if skip_split || later {
            continue;
        }
        encode_kv(&mut h, k, v);
        n_kv += 1;
    }
    let (mut xxh3_at, mut blake3_at, mut header_at) = (None, None, None);
    // Encoded values of the integrity keys: zeros for the header digest.
    let mut reserved = Vec::new();
    if opts.integrity {
        encode_str(TENSOR_XXH3_KEY, &mut h);
        h.extend_from_slice(&ValueType::Array.id().to_le_bytes());
        let value_at = h.len() as u64;
        h.extend_from_slice(&ValueType::U64.id().to_le_bytes());
        h.extend_from_slice(&(range.len() as u64).to_le_bytes());
        xxh3_at = Some(h.len() as u64);
        h.resize(h.len() + 8 * range.len(), 0);
        reserved.push(value_at..h.len() as u64);
        for (key, at) in [
            (DATA_BLAKE3_KEY, &mut blake3_at),
            (HEADER_BLAKE3_KEY, &mut header_at),
        ] {
            encode_str(key, &mut h);
            h.extend_from_slice(&ValueType::String.id().to_le_bytes());
            let value_at = h.len() as u64;
            h.extend_from_slice(&64u64.to_le_bytes());
            *at = Some(h.len() as u64);
            h.resize(h.len() + 64, b'0');
            reserved.push(value_at..h.len() as u64);
        }
        n_kv += 3;
    }
    h[n_kv_at..n_kv_at + 8].copy_from_slice(&n_kv.to_le_bytes());
    let mut offset = 0u64;
    for d in &decls[range.clone()] {
        encode_str(&d.name, &mut h);
        debug_assert!(d.dims.len() <= MAX_DIMS);
        h.extend_from_slice(&(d.dims.len() as u32).to_le_bytes());
        for &x in &d.dims {
            h.extend_from_slice(&x.to_le_bytes());
        }
        h.extend_from_slice(&d.ty.id().to_le_bytes());
        h.extend_from_slice(&offset.to_le_bytes());
        offset = align_up(d.n_bytes, align)
            .and_then(|p| offset.checked_add(p))
            .ok_or(FormatError::WriterState {
                what: "data section size overflows u64",
            })?;
    }
    let padded = align_up(h.len() as u64, align).unwrap_or(h.len() as u64);
    h.resize(padded as usize, 0);
    if let Some(at) = header_at.map(|a| a as usize) {
        // Everything the header digest covers is final now (it excludes the reserved values).
        let digest = integrity::hex(&integrity::header_digest(&h, &reserved));
        h[at..at + 64].copy_from_slice(digest.as_bytes());
    }

    let fin = &s.finals[i];
    let name = fin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out.gguf".into());
    let temp = dir_of(dest).join(format!(
        ".{name}{TEMP_INFIX}{}.{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| io("creating temp file", &temp, e))?;
    s.temps.push(temp.clone());
    let mut file = BufWriter::with_capacity(IO_BUFFER, file);
    file.write_all(&h).map_err(|e| io("writing", &temp, e))?;
    s.open = Some(OpenShard {
        file,
        temp,
        xxh3_at,
        blake3_at,
        blake: blake3::Hasher::new(),
        digests: Vec::with_capacity(range.len()),
        unsynced: 0,
        syncing: None,
    });
    s.next_shard = i + 1;
    Ok(())
}

/// Patches the digests into the open shard's header, flushes and fsyncs it.
fn close_shard(s: &mut Stream) -> Result<()> {
    let Some(mut o) = s.open.take() else {
        return Ok(());
    };
    o.join_sync()?;
    let OpenShard {
        file,
        temp,
        xxh3_at,
        blake3_at,
        blake,
        digests,
        ..
    } = o;
    let mut file = file
        .into_inner()
        .map_err(|e| io("flushing", &temp, e.into_error()))?;
    let patch = |file: &mut File, at: u64, bytes: &[u8]| -> Result<()> {
        file.seek(SeekFrom::Start(at))
            .and_then(|_| file.write_all(bytes))
            .map_err(|e| io("patching integrity keys in", &temp, e))
    };
    if let Some(at) = xxh3_at {
        let bytes: Vec<u8> = digests.iter().flat_map(|d| d.to_le_bytes()).collect();
        patch(&mut file, at, &bytes)?;
    }
    if let Some(at) = blake3_at {
        patch(&mut file, at, integrity::hex(&blake.finalize()).as_bytes())?;
    }
    file.sync_all().map_err(|e| io("fsyncing", &temp, e))?;
    Ok(())
}

fn remove_temps(s: Stream) {
    let Stream { temps, open, .. } = s;
    drop(open);
    for t in temps {
        let _ = std::fs::remove_file(t);
    }
}

#[cfg(test)]
mod tests {
    use super::{temp_pid, GgufWriter, WRITEBACK_STEP};
    use crate::{GgmlType, GgufFile};

    /// A file several writeback steps long comes back byte for byte: the background syncs run
    /// (and are joined) without disturbing the stream, the digests or the rename.
    #[test]
    fn files_longer_than_the_writeback_step_read_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("big.gguf");
        let n = 3 * WRITEBACK_STEP as usize + 12_345 * 4;
        let data: Vec<u8> = (0..n)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8)
            .collect();
        let mut w = GgufWriter::new(&dest);
        w.add_kv("general.architecture", "llama").unwrap();
        w.add_tensor("t", &[(n / 4) as u64], GgmlType::F32).unwrap();
        for piece in data.chunks(5 << 20) {
            w.write_tensor_chunk(piece).unwrap();
        }
        w.finish().unwrap();
        let f = GgufFile::open(&dest).unwrap();
        assert!(f.tensor("t").unwrap().bytes() == &data[..]);
        f.verify().unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["big.gguf"], "no temp file is left behind");
    }

    #[test]
    fn temp_names_are_recognised_and_nothing_else_is() {
        assert_eq!(temp_pid(".m.gguf.ingot-tmp.1234.0"), Some(1234));
        assert_eq!(temp_pid(".a.ingot-tmp.b.gguf.ingot-tmp.7.12"), Some(7));
        for other in [
            "m.gguf",
            "m.gguf.ingot-tmp.1234.0",
            ".m.gguf.ingot-tmp.1234",
            ".m.gguf.ingot-tmp.12x4.0",
            ".m.gguf.ingot-tmp..0",
            ".m.gguf.ingot-tmp.1.0.bak",
            ".m.gguf.ingot-tmp.99999999999.0",
        ] {
            assert_eq!(temp_pid(other), None, "{other}");
        }
    }
}
