#!/usr/bin/env python3
"""Builds the tokenizer test fixtures of libullme (run from anywhere; idempotent).

1. Ensures llama.cpp's vocab test files (ggml-vocab-*.gguf + .inp/.out) are in
   $ULLME_CACHE/vocab (default ~/.cache/ullme/vocab). When absent they are extracted
   from the llama-cpp-python sdist, fetched with
   `pip download --no-deps --no-binary llama-cpp-python llama-cpp-python`.
2. Writes Tests/fixtures/tokenizer/corpus.jsonl (one {"b64": ...} per line, so invalid
   UTF-8 and NULs survive) from CORPUS below.
3. For each reference tokenizer HF transformers can load, writes
   Tests/fixtures/tokenizer/expected-<name>.json:
     {"source": ..., "ids": [[...] per corpus line, add_special_tokens=False],
      "ids_special": [[...] per line, add_special_tokens=True]}
   (plus expected-vocab-starcoder-digits.json: see DIGITS_FIRST).
   Invalid UTF-8 is given to HF as bytes.decode("utf-8", errors="replace"), which is
   exactly what libullme does with raw bytes.
   The tokenizer.json HF makes of each llama.cpp vocab goes to $ULLME_CACHE/vocab/hf/<name>/.
   SmolLM2 (the default model, via its GGUF) also gets its tokenizer.json exported into the
   fixture dir (tokenizer-smollm2/), plus a variant with SmolLM2's original
   pre-tokenizer Sequence[Digits(individual_digits), ByteLevel] (tokenizer-smollm2-digits/).
Needs: transformers>=4.45 with gguf, tokenizers. Model: scripts/fetch_models.sh.
"""
import base64, glob, json, os, shutil, subprocess, sys, tarfile, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "Tests", "fixtures", "tokenizer")
CACHE = os.environ.get("ULLME_CACHE", os.path.expanduser("~/.cache/ullme"))
VOCAB = os.path.join(CACHE, "vocab")
MODELS = os.path.join(CACHE, "models")
VOCABS = ["llama-spm", "llama-bpe", "qwen2", "gpt-2", "phi-3", "starcoder", "refact",
          "deepseek-llm", "deepseek-coder", "falcon", "mpt", "command-r", "qwen35", "gemma-4"]

CORPUS = [
    b"",
    b"Hello world",
    b"Hello, world! How are you doing today?",
    b" leading space",
    b"  two leading spaces",
    b"trailing space ",
    b"trailing spaces   ",
    b"multiple    spaces   between words",
    b"tabs\tand\t\ttabs",
    b"line1\nline2\n\nline4\r\nwindows\rold mac",
    b"\n\n\n",
    b" \n \n  \n\t\n",
    b"   ",
    b"\t",
    b"I'm sure you're right, we'll see. He's done, they've gone, I'd go. DON'T SHOUT, I'M HERE, YOU'LL SEE",
    b"numbers: 0 1 12 123 1234 12345 123456789012345678901234567890",
    b"3.14159 2,718 -42 1e10 0x1F 1/2 50% $100.00",
    b"version v1.2.3 and 2024-01-15T10:30:00Z",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber Stra\u00dfe \u00e5ngstr\u00f6m Se\u00f1or".encode(),
    "e\u0301 combining accent vs \u00e9 precomposed".encode(),
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01\u8fd9\u662f\u4e00\u4e2a\u6d4b\u8bd5\u3002".encode(),
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3001\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a\u3002".encode(),
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8\uc785\ub2c8\ub2e4".encode(),
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645\u060c \u0647\u0630\u0627 \u0627\u062e\u062a\u0628\u0627\u0631 \u0661\u0662\u0663".encode(),
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e \u0967\u0968\u0969".encode(),
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u042d\u0442\u043e \u0442\u0435\u0441\u0442.".encode(),
    "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5".encode(),
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd".encode(),
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e0a\u0e32\u0e27\u0e42\u0e25\u0e01".encode(),
    "emoji \U0001F600\U0001F389 flags \U0001F1EB\U0001F1F7 family \U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 skin \U0001F44D\U0001F3FD heart \u2764\ufe0f".encode(),
    "\U0001F9D1\u200d\U0001F4BB\U0001F3F3\ufe0f\u200d\U0001F308".encode(),
    b"def foo(x):\n    return x ** 2  # square\n\nprint(foo(3))",
    b"for (int i = 0; i < n; ++i) { sum += a[i]; }",
    b"<html><body class=\"main\">&amp; &lt;tag&gt;</body></html>",
    b"{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    b"https://example.com/path?query=1&b=two#frag user@example.org",
    b"<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
    b"text with <|endoftext|> inside and <s> and </s> and <|begin_of_text|> <unk>",
    b"<|im_start|><|im_start|>  <|im_end|>x",
    b"!!!??? ... --- *** ___ ~~~ ``` '''",
    b"'s 't 're 've 'm 'll 'd",
    b"a\x00b NUL\x00\x00 inside",
    b"invalid \xff utf8 \xfe\xfd here",
    b"truncated \xe4\xbd seq and lone \x80 continuation",
    b"overlong \xc0\xaf and surrogate \xed\xa0\x80 and too big \xf4\x90\x80\x80 end",
    b"\xf0\x9f\x98",
    b"mixed Latin\xe4\xb8\xadtext123abc",
    "\u00a0nbsp\u2003em space\u3000ideographic".encode(),
    "Zero\u200bwidth\u200cjoiner\u200dtest\ufeffbom".encode(),
    "\u2160\u2161 roman, \u00bd fraction, \u00b2 super, \u2460 circled, \uff11\uff12 fullwidth".encode(),
    "The quick brown fox jumps over the lazy dog. ".encode() * 8,
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".encode(),
    "A\u0300\u0301\u0302\u0303 stacked marks \u1e9b\u0323".encode(),
    "Mr. O'Neil's dog's toy. rock'n'roll".encode(),
    "  \u00a0 \t mixed whitespace end \n ".encode(),
]


def number_class_lines(per_line=96):
    """Every character of Unicode's number classes Nd, Nl and No (Python's unicodedata), in lines of
    `per_line`, each chunk three ways: after a space ("x ½ ² ...": not at the line start, where llama.cpp's
    and transformers' SentencePiece prefixes differ), in one run ("½²...": digit grouping such as
    \\p{N}{1,3}), and after a letter ("a½a²..."). Where pre-tokenizers differ (Digits, \\p{N}, \\d)."""
    import unicodedata
    lines = []
    for cat in ("Nd", "Nl", "No"):
        chars = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == cat]
        for i in range(0, len(chars), per_line):
            chunk = chars[i:i + per_line]
            lines += [("x " + " ".join(chunk)).encode(), "".join(chunk).encode(), ("a" + "a".join(chunk)).encode()]
    return lines


CORPUS += number_class_lines()


def ensure_vocabs():
    os.makedirs(VOCAB, exist_ok=True)
    missing = [v for v in VOCABS if not os.path.exists(os.path.join(VOCAB, f"ggml-vocab-{v}.gguf"))]
    if not missing:
        return
    tmp = tempfile.mkdtemp()
    try:
        sdists = glob.glob(os.path.join(CACHE, "llama_cpp_python-*.tar.gz"))
        if not sdists:
            subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                                   "llama-cpp-python", "llama-cpp-python", "-d", CACHE])
            sdists = glob.glob(os.path.join(CACHE, "llama_cpp_python-*.tar.gz"))
        with tarfile.open(sorted(sdists)[-1]) as tf:
            for m in tf.getmembers():
                base = os.path.basename(m.name)
                if "/vendor/llama.cpp/models/ggml-vocab-" in m.name and m.isfile():
                    f = tf.extractfile(m)
                    with open(os.path.join(VOCAB, base + ".part"), "wb") as out:
                        shutil.copyfileobj(f, out)
                    os.replace(os.path.join(VOCAB, base + ".part"), os.path.join(VOCAB, base))
    finally:
        shutil.rmtree(tmp)


def write_corpus():
    with open(os.path.join(FIX, "corpus.jsonl"), "w") as f:
        for b in CORPUS:
            f.write(json.dumps({"b64": base64.b64encode(b).decode()}) + "\n")


# The pre-tokenizer of SmolLM2's and StarCoder's own tokenizer.json (each digit isolated, then GPT-2's
# ByteLevel split), which llama.cpp's `tokenizer.ggml.pre` "smollm" / "starcoder" stand for. transformers'
# GGUF conversion ignores tokenizer.ggml.pre and keeps only the ByteLevel step, so after a space a number
# other than 0-9 (" ½", " ²", " ٣") is split differently by it: expected-smollm2-gguf / expected-vocab-starcoder
# are that conversion, expected-smollm2-digits / expected-vocab-starcoder-digits the model's own tokenizer.
DIGITS_FIRST = {"type": "Sequence", "pretokenizers": [
    {"type": "Digits", "individual_digits": True},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
DIGITS_FIRST_VOCABS = ["starcoder"]


def fast(tokenizer_json):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(tokenizer_json)))


def expected(tok, source):
    texts = [b.decode("utf-8", errors="replace") for b in CORPUS]
    return {"source": source,
            "ids": [tok(t, add_special_tokens=False)["input_ids"] for t in texts],
            "ids_special": [tok(t, add_special_tokens=True)["input_ids"] for t in texts]}


def dump(name, data):
    with open(os.path.join(FIX, f"expected-{name}.json"), "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")


def main():
    os.makedirs(FIX, exist_ok=True)
    ensure_vocabs()
    write_corpus()
    from transformers import AutoTokenizer, PreTrainedTokenizerFast
    import transformers
    ver = f"transformers {transformers.__version__}"
    # SmolLM2 from its GGUF (what HF makes of the GGUF metadata).
    tok = AutoTokenizer.from_pretrained(MODELS, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    dump("smollm2-gguf", expected(tok, f"{ver}, GGUF SmolLM2-135M-Instruct.Q4_1.gguf"))
    d = os.path.join(FIX, "tokenizer-smollm2")
    tok.save_pretrained(d)
    for extra in glob.glob(os.path.join(d, "*")):
        if os.path.basename(extra) not in ("tokenizer.json", "tokenizer_config.json"):
            os.remove(extra)
    # Re-written compactly (1.5 MB instead of 3.5 MB indented).
    j = json.load(open(os.path.join(d, "tokenizer.json")))
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(j, f, ensure_ascii=False, separators=(",", ":"))
    # Variant with SmolLM2's original pre-tokenizer (Digits individual + ByteLevel).
    j["pre_tokenizer"] = DIGITS_FIRST
    j["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
    d2 = os.path.join(FIX, "tokenizer-smollm2-digits")
    os.makedirs(d2, exist_ok=True)
    # Only the diff to tokenizer-smollm2 is committed (keeps the repo small); the test patches it in.
    json.dump({"pre_tokenizer": j["pre_tokenizer"], "post_processor": j["post_processor"]},
              open(os.path.join(d2, "patch.json"), "w"), indent=1)
    dump("smollm2-digits", expected(fast(j), f"{ver}, tokenizer-smollm2 + patch.json"))
    # Gemma 3 (SentencePiece "llama" GGUF, 262k tokens), when fetched (scripts/fetch_models.sh --gemma3).
    if os.path.exists(os.path.join(MODELS, "gemma-3-270m-q4_k_m.gguf")):
        t = AutoTokenizer.from_pretrained(MODELS, gguf_file="gemma-3-270m-q4_k_m.gguf")
        dump("gemma3-gguf", expected(t, f"{ver}, GGUF gemma-3-270m-q4_k_m.gguf"))
        t.save_pretrained(os.path.join(VOCAB, "hf", "gemma3"))
    # llama.cpp vocab GGUFs that transformers can load.
    for v in VOCABS:
        try:
            t = AutoTokenizer.from_pretrained(VOCAB, gguf_file=f"ggml-vocab-{v}.gguf")
            dump(f"vocab-{v}", expected(t, f"{ver}, llama.cpp ggml-vocab-{v}.gguf"))
            if v in DIGITS_FIRST_VOCABS:
                jv = json.loads(t.backend_tokenizer.to_str())
                jv["pre_tokenizer"] = DIGITS_FIRST
                dump(f"vocab-{v}-digits", expected(fast(jv), f"{ver}, llama.cpp ggml-vocab-{v}.gguf, "
                                                             "pre-tokenizer Digits(individual) + ByteLevel"))
            # HF's tokenizer.json of it (not committed; in the cache) to test the tokenizer.json path too.
            t.save_pretrained(os.path.join(VOCAB, "hf", v))
            print(f"vocab {v}: ok", file=sys.stderr)
        except Exception as e:  # noqa: BLE001
            print(f"vocab {v}: transformers cannot load it ({type(e).__name__}: {str(e)[:200]})", file=sys.stderr)
            for p in glob.glob(os.path.join(FIX, f"expected-vocab-{v}.json")) + \
                    glob.glob(os.path.join(FIX, f"expected-vocab-{v}-digits.json")):
                os.remove(p)


if __name__ == "__main__":
    main()
