"""The rooms of the transformers backend (``hone.models.transformers_backend``).

- ``loading.py`` — weights from a folder, a GGUF file or the hub; dtype (int8 on CPU); EOS.
- ``tokens.py`` — the tokenizer: fast encode/decode, counting, chat rendering, token texts.
- ``kv.py`` — KV sessions: a cache and its token ids, prefix reuse, rollback; an LRU by key.
- ``decode.py`` — forward passes, chunked prefill, the decode loop, cancellation per layer.
- ``healing.py`` — token healing: the tokens that may re-produce the text taken back.
- ``drafting.py`` — prompt-lookup drafts for speculative decoding.
"""
