"""RAG workspaces: a named document collection bound to one embedding model.

>>> with Terminus() as t, Workspace(t, "notes") as ws:
...     ws.ingest_files(["docs/"], metadata={"project": "terminus"})
...     for hit in ws.search("how do I swap the store?", top_k=3):
...         print(hit.score, hit.label())
...     answer = ws.ask("How do I swap the store?", model="smollm2")
...     for event in answer: ...
...     print([c.result.label() for c in answer.citations])

A workspace lives in ``<TERMINUS_HOME>/rag/<name>/``. It calls only ``client.embed`` and
``client.completion``, so it works the same when those run on a peer or a server.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from terminus.errors import (
    DocumentNotFoundError,
    EngineUnavailableError,
    InvalidParameterError,
    WorkspaceModelMismatchError,
    WorkspaceNotFoundError,
)
from terminus.models.progress import NullProgress, Progress
from terminus.rag import ann
from terminus.rag.answer import (
    DEFAULT_CONTEXT_WORDS,
    FOCUSED_CONTEXT_WORDS,
    Answer,
    build_prompt,
)
from terminus.rag.client import RagClient, canonical_model
from terminus.rag.ingest import (
    DEFAULT_BATCH,
    CallbackProgress,
    ChunkingOptions,
    ChunkProgress,
    Embedder,
    Prepared,
    ProgressCallback,
    TextDocument,
    expand_paths,
    prepare_file,
    prepare_text,
    rechunk,
)
from terminus.rag.keywords import reciprocal_rank_fusion
from terminus.rag.registry import check_name, list_workspaces, workspaces_root
from terminus.rag.sqlite_db import is_workspace
from terminus.rag.sqlite_store import SqliteStore
from terminus.rag.store import Filter, StoreConfig, VectorStore
from terminus.rag.types import DocumentInfo, IngestResult, Metadata, SearchResult, WorkspaceInfo

DEFAULT_EMBED_MODEL = "all-minilm-l6-v2"
EMBED_MODEL_ENV = "TERMINUS_EMBED_MODEL"
#: How many candidates each ranking contributes to a hybrid search before fusion.
HYBRID_CANDIDATES = 50


def _progress(progress: bool | Progress | ProgressCallback) -> Progress:
    """A bar on stderr (True), nothing (False), a Progress, or a ``callback(stage, done,
    total)`` function."""
    if progress is True:
        return ChunkProgress()
    if progress is False:
        return NullProgress()
    if hasattr(progress, "advance"):
        return progress  # type: ignore[return-value]
    return CallbackProgress(progress)


class Workspace:
    """Open (or create) the workspace ``name``.

    ``model`` is the embedding model: a new workspace is bound to it (default
    ``$TERMINUS_EMBED_MODEL`` or all-MiniLM-L6-v2); an existing one must match it, or
    ``WorkspaceModelMismatchError`` is raised (``reindex(model=...)`` re-embeds instead).
    ``store`` replaces the embedded SQLite store (a server vector database).
    ``index`` picks the search of the embedded store: ``"exact"``, ``"ann"`` (an
    approximate IVF index, needs faiss), or ``"auto"``: approximate from 200,000 chunks
    when faiss is installed (docs/rag.md, "RAG at scale").
    """

    def __init__(
        self,
        client: RagClient,
        name: str,
        *,
        model: str | None = None,
        create: bool = True,
        store: VectorStore | None = None,
        batch_size: int = DEFAULT_BATCH,
        hybrid: bool = False,
        index: str = "auto",
    ) -> None:
        self.client = client
        self.name = check_name(name)
        self.path = workspaces_root(client) / name
        self.batch_size = batch_size
        self.hybrid = hybrid
        wanted = canonical_model(client, model) if model else None
        if store is None:
            if index not in ann.MODES:
                raise InvalidParameterError(
                    f"index must be one of {', '.join(ann.MODES)}, not {index!r}"
                )
            if index == "ann" and not ann.available():
                raise EngineUnavailableError(
                    "index='ann' needs faiss, which is not installed",
                    hint="pip install 'terminus-sdk[ann]', or use index='auto' (exact search)",
                )
            self._index_mode = index
            store = self._open_store(wanted, create)
        self.store: VectorStore = store
        if wanted is not None and wanted != store.config.model:
            store.close()
            raise WorkspaceModelMismatchError(
                f"workspace {name!r} is bound to {store.config.model}, not {wanted}",
                hint=f"open it with model {store.config.model}, or reindex it with {wanted}",
            )

    def _open_store(self, model: str | None, create: bool) -> SqliteStore:
        if is_workspace(self.path):
            return SqliteStore(self.path, index=self._index_mode)
        if not create:
            known = [info.name for info in list_workspaces(self.client)]
            raise WorkspaceNotFoundError(
                f"no workspace named {self.name!r}",
                hint=("workspaces: " + ", ".join(known)) if known else "create one with ingest",
            )
        model = model or canonical_model(
            self.client, os.environ.get(EMBED_MODEL_ENV) or DEFAULT_EMBED_MODEL
        )
        dimensions = self.client.embed("dimension probe", model=model).dimensions
        return SqliteStore(self.path, StoreConfig(model, dimensions), self._index_mode)

    # -- properties ------------------------------------------------------------------

    @property
    def model(self) -> str:
        return self.store.config.model

    @property
    def dimensions(self) -> int:
        return self.store.config.dimensions

    def info(self) -> WorkspaceInfo:
        documents, chunks = self.store.counts()
        return WorkspaceInfo(
            name=self.name,
            path=str(self.path),
            model=self.model,
            dimensions=self.dimensions,
            documents=documents,
            chunks=chunks,
            created_at=float(getattr(self.store, "created_at", 0.0)),
        )

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- ingest ------------------------------------------------------------------------

    def ingest_text(
        self,
        text: str,
        *,
        source: str | None = None,
        metadata: Metadata | None = None,
        kind: str = "text",
        chunking: str = "auto",
        chunk_size: int | None = None,
        overlap: int | None = None,
    ) -> IngestResult:
        """Add one document given as a string (``kind="markdown"`` to keep heading paths)."""
        document = TextDocument(text, source, dict(metadata or {}), kind)
        return self.ingest([document], chunking=chunking, chunk_size=chunk_size, overlap=overlap)[0]

    def ingest_files(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        metadata: Metadata | None = None,
        chunking: str = "auto",
        chunk_size: int | None = None,
        overlap: int | None = None,
        progress: bool | Progress | ProgressCallback = False,
    ) -> list[IngestResult]:
        """Add files (directories are walked for .txt .md .html .pdf …).

        Every file is read and chunked before anything is written, so a bad file fails
        the call with nothing added. Re-ingesting a file whose content changed replaces
        the previous version (same source) in the same transaction. Large files are
        streamed: memory stays bounded by about one copy of the largest file's text.
        ``progress``: True for a bar on stderr, or ``callback(stage, done, total)``.
        """
        options = ChunkingOptions(chunking, chunk_size, overlap)
        options.chunker("text")  # bad options fail before any file is read
        files = expand_paths(paths)
        if not files:
            raise InvalidParameterError("no files to ingest")
        bar = _progress(progress)
        prepared = [prepare_file(path, dict(metadata or {}), options, bar) for path in files]
        return self._write(prepared, bar)

    def ingest(
        self,
        documents: Sequence[TextDocument],
        *,
        chunking: str = "auto",
        chunk_size: int | None = None,
        overlap: int | None = None,
        progress: bool | Progress | ProgressCallback = False,
    ) -> list[IngestResult]:
        """Add many string documents in one pipelined pass (one result per document)."""
        options = ChunkingOptions(chunking, chunk_size, overlap)
        bar = _progress(progress)
        prepared = [prepare_text(document, options, bar) for document in documents]
        return self._write(prepared, bar)

    def _write(self, prepared: list[Prepared], progress: Progress) -> list[IngestResult]:
        results: dict[int, IngestResult] = {}
        todo: list[Prepared] = []
        replaces: dict[str, list[str]] = {}
        seen: dict[str, str] = {}
        for i, item in enumerate(prepared):
            record = item.record
            existing = self.store.find_by_hash(record.content_hash) or seen.get(record.content_hash)
            if existing is not None:
                results[i] = IngestResult(
                    document_id=existing, source=record.source, status="skipped", chunks=0
                )
                continue
            seen[record.content_hash] = record.id
            replaces[record.id] = self.store.find_by_source(record.source)
            todo.append(item)
        embedder = Embedder(self.client, self.model, self.dimensions, self.batch_size, progress)
        progress.start(f"embedding into {self.name}", sum(p.count for p in todo))
        written: dict[str, IngestResult] = {}
        try:
            for item, batches in embedder.plan(todo):
                old = replaces[item.record.id]
                count = self.store.add_document(item.record, batches, replace=old)
                written[item.record.id] = IngestResult(
                    document_id=item.record.id,
                    source=item.record.source,
                    # 0 chunks: another process added the same content first
                    status="skipped" if count == 0 else "replaced" if old else "added",
                    chunks=count,
                    replaced=tuple(old) if count else (),
                )
        finally:
            progress.finish()
        return [
            results[i] if i in results else written[item.record.id]
            for i, item in enumerate(prepared)
        ]

    # -- documents ----------------------------------------------------------------------

    def documents(self) -> list[DocumentInfo]:
        return self.store.documents()

    def resolve_document(self, ref: str) -> str:
        """A document id from its id, a unique id prefix (4+ characters) or its source."""
        documents = self.store.documents()
        exact = [d.id for d in documents if d.id == ref]
        by_source = [d.id for d in documents if d.source in (ref, _resolved(ref))]
        by_prefix = [d.id for d in documents if len(ref) >= 4 and d.id.startswith(ref)]
        for candidates in (exact, by_source, by_prefix):
            if len(candidates) == 1:
                return candidates[0]
            if len(candidates) > 1:
                raise InvalidParameterError(f"{ref!r} matches {len(candidates)} documents")
        raise DocumentNotFoundError(f"no document {ref!r} in workspace {self.name!r}")

    def delete_document(self, ref: str) -> str:
        """Remove a document (by id, id prefix or source) and its chunks; returns its id."""
        document_id = self.resolve_document(ref)
        if not self.store.delete_document(document_id):
            raise DocumentNotFoundError(f"no document {ref!r} in workspace {self.name!r}")
        return document_id

    def reindex(
        self,
        model: str | None = None,
        *,
        chunking: str | None = None,
        chunk_size: int | None = None,
        overlap: int | None = None,
        progress: bool | Progress | ProgressCallback = False,
    ) -> WorkspaceInfo:
        """Re-chunk and re-embed every document, atomically, optionally binding the
        workspace to a new embedding ``model`` (its dimension may differ)."""
        target = canonical_model(self.client, model) if model else self.model
        dimensions = (
            self.dimensions
            if target == self.model
            else self.client.embed("dimension probe", model=target).dimensions
        )
        options = (
            ChunkingOptions(chunking or "auto", chunk_size, overlap)
            if chunking or chunk_size or overlap
            else None
        )
        bar = _progress(progress)
        prepared = [rechunk(record, options, bar) for record in self.store.document_records()]
        embedder = Embedder(self.client, target, dimensions, self.batch_size, bar)
        bar.start(f"reindexing {self.name}", sum(p.count for p in prepared))
        try:
            items = ((p.record, batches) for p, batches in embedder.plan(prepared))
            self.store.rebuild(StoreConfig(target, dimensions), items)
        finally:
            bar.finish()
        return self.info()

    # -- search -----------------------------------------------------------------------

    def search(
        self,
        query: str,
        top_k: int = 5,
        filter: Mapping[str, Any] | None = None,
        *,
        hybrid: bool | None = None,
        query_vector: Any = None,
    ) -> list[SearchResult]:
        """The ``top_k`` chunks most similar to ``query``, best first.

        ``filter`` keeps documents whose metadata has every key with the value given.
        ``hybrid`` also ranks chunks by keywords (FTS5 BM25) and fuses both rankings by
        reciprocal rank (scores are then RRF scores, not cosine similarities).
        ``query_vector`` skips embedding ``query`` (when it was embedded in a batch).
        """
        if top_k < 1:
            raise InvalidParameterError(f"top_k must be at least 1, not {top_k}")
        vector = (
            self.client.embed(query, model=self.model).vectors[0]
            if query_vector is None
            else query_vector
        )
        use_hybrid = self.hybrid if hybrid is None else hybrid
        if not use_hybrid:
            return self.store.search(vector, top_k, filter)
        depth = max(top_k, HYBRID_CANDIDATES)
        dense = self.store.search(vector, depth, filter)
        sparse = self.store.keyword_search(query, depth, filter)
        by_id = {r.chunk_id: r for r in (*dense, *sparse)}
        fused = reciprocal_rank_fusion([[r.chunk_id for r in dense], [r.chunk_id for r in sparse]])
        return [by_id[cid].model_copy(update={"score": s}) for cid, s in fused[:top_k]]

    def build_index(self) -> bool:
        """Build (or load) the approximate index now instead of in the background; whether
        searches use one (``index="auto"`` wants 200,000 chunks and faiss installed)."""
        build = getattr(self.store, "build_index", None)
        return bool(build()) if build is not None else False

    def search_vector(
        self, vector: Any, top_k: int = 5, filter: Filter | None = None
    ) -> list[SearchResult]:
        """Search with a vector you embedded yourself (its dimension must match)."""
        return self.store.search(vector, top_k, filter)

    def ask(
        self,
        question: str,
        model: str | None = None,
        top_k: int = 5,
        filter: Mapping[str, Any] | None = None,
        *,
        hybrid: bool | None = None,
        context_words: int = DEFAULT_CONTEXT_WORDS,
        focus_words: int | None = FOCUSED_CONTEXT_WORDS,
        **generation: Any,
    ) -> Answer:
        """Retrieve ``top_k`` chunks and stream an answer from chat ``model`` citing them.

        Retrieval is hybrid (vector and keywords) unless ``hybrid=False``. The model
        reads the retrieved chunks' sentences closest to the question
        (``focus_words`` in all, from up to three chunks); ``focus_words=None`` gives it
        whole chunks up to ``context_words`` instead. Returns an :class:`Answer`: iterate
        it for events as from ``completion``; its ``sources`` and ``citations`` say which
        chunks ``[1]``, ``[2]`` … are. Keyword arguments (``temperature``, ``max_tokens``
        …) go to ``completion``.
        """
        # keywords find the exact terms questions ask about: on bench_rag_answers.py's 20
        # questions the fact's chunk was in the top 5 for 18 with hybrid, 14 by vector
        results = self.search(question, top_k, filter, hybrid=True if hybrid is None else hybrid)
        embed = self._embed_texts
        focus = embed if focus_words is not None else None
        prompt = build_prompt(question, results, context_words, focus, focus_words or 0)
        stream = self.client.completion(prompt.messages, model=model, **generation)
        return Answer(stream, question, prompt.sources, prompt.shown, embed)

    def _embed_texts(self, texts: list[str]) -> Any:
        return self.client.embed(texts, model=self.model).vectors


def _resolved(ref: str) -> str:
    try:
        return str(Path(ref).resolve())
    except OSError:
        return ref


def open_workspace(
    client: RagClient, name: str, *, model: str | None = None, create: bool = False
) -> Workspace:
    """An existing workspace (``WorkspaceNotFoundError`` if missing, unless ``create``)."""
    return Workspace(client, name, model=model, create=create)
