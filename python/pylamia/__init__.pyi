# Type stubs for pylamia (the compiled module pylamia._C, re-exported).
__version__: str
torch_version: str

# ---- data: sequences and splits (bindings/data_sequences.cpp) ----
import os as _seq_os
from typing import Dict as _SDict, List as _SList, Optional as _SOptional, Sequence as _SSequence, Union as _SUnion

class SequenceStats:
    """What build_sequences kept and removed (exact counts)."""
    users_in: int
    interactions_in: int
    items_in: int
    items_without_text: int
    interactions_without_text: int
    interactions_below_rating: int
    interactions_truncated: int
    users_too_short: int
    interactions_of_short_users: int
    users_out: int
    interactions_out: int
    items_out: int
    def as_dict(self) -> _SDict[str, int]: ...

class UserSequence:
    """One user's processed sequence, oldest first."""
    user: int
    id: str
    items: _SList[int]
    timestamps: _SList[int]
    def __len__(self) -> int: ...

class ProcessedSequences:
    """The result of build_sequences: item indices refer to .catalog."""
    catalog: "Catalog"
    source_items: _SList[int]
    users: _SList[UserSequence]
    stats: SequenceStats
    def user_ids(self) -> _SList[str]: ...
    def num_interactions(self) -> int: ...
    def __len__(self) -> int: ...

def build_sequences(dataset: "Dataset", *, min_rating: _SOptional[float] = 4.0, max_length: int = 20,
                    min_length: int = 2, drop_items_without_text: bool = False) -> ProcessedSequences: ...
def build_sequences_from_table(users: _SSequence[str], items: _SSequence[int], *, num_items: int,
                               timestamps: _SOptional[_SSequence[_SOptional[int]]] = None,
                               ratings: _SOptional[_SSequence[_SOptional[float]]] = None,
                               items_with_text: _SOptional[_SSequence[bool]] = None,
                               min_rating: _SOptional[float] = 4.0, max_length: int = 20, min_length: int = 2,
                               drop_items_without_text: bool = False) -> ProcessedSequences: ...

class UserOrder:
    """A saved random order of users."""
    def __init__(self, seed: int, user_ids: _SList[str]) -> None: ...
    seed: int
    user_ids: _SList[str]
    def __len__(self) -> int: ...

def shuffle_users(user_ids: _SList[str], seed: int) -> UserOrder: ...
def save_user_order(path: _SUnion[str, _seq_os.PathLike], order: UserOrder) -> None: ...
def load_user_order(path: _SUnion[str, _seq_os.PathLike]) -> UserOrder: ...
def check_user_order(order: UserOrder, user_ids: _SList[str]) -> None: ...
def load_or_create_user_order(path: _SUnion[str, _seq_os.PathLike], user_ids: _SList[str], seed: int) -> UserOrder: ...

class SequenceExample:
    """Predict target from history (oldest first); user is the source user index."""
    user: int
    history: _SList[int]
    target: int

class SplitDataset:
    train: _SList[SequenceExample]
    valid: _SList[SequenceExample]
    test: _SList[SequenceExample]
    train_users: _SList[int]
    valid_users: _SList[int]
    test_users: _SList[int]
    unused_users: int
    skipped_examples: int

def split_user_holdout(sequences: ProcessedSequences, order: UserOrder, *,
                       train_users: _SOptional[_SUnion[int, float]] = None, valid_users: _SUnion[int, float] = 0,
                       test_users: _SUnion[int, float] = 0.1, train_examples: str = "last_item") -> SplitDataset: ...
def split_leave_one_out(sequences: ProcessedSequences, *, train_examples: str = "last_item") -> SplitDataset: ...
# ---- end data: sequences ----

# ---- data: synthetic catalog (bindings/data_synthetic.cpp) ----
import numpy as _syn_np
import torch as _syn_torch
from typing import Any as _YAny, List as _YList, Optional as _YOptional

class SyntheticAttribute:
    """A text attribute of synthetic items: name, style ('phrase', 'sentences', 'tags', 'path'), aspects it mixes."""
    def __init__(self, name: str, style: str, aspects: _YList[str]) -> None: ...
    name: str
    style: str
    aspects: _YList[str]

class SyntheticOptions:
    """Everything that defines a synthetic catalog; the defaults are the built-in dataset."""
    def __init__(self, **fields: _YAny) -> None: ...
    seed: int
    num_items: int
    num_users: int
    aspect_names: _YList[str]
    aspect_sizes: _YList[int]
    words_per_value: int
    filler_words: int
    attributes: _YList[SyntheticAttribute]
    sentences: int
    filler_per_sentence: int
    min_sequence_length: int
    max_sequence_length: int
    preferred_values: int
    candidates: int
    noise: float
    popularity_skew: float
    rating_noise: float
    start_timestamp: int
    timestamp_span: int
    max_gap: int
    def validate(self) -> None: ...
    def to_json(self) -> str: ...
    @staticmethod
    def from_json(text: str) -> "SyntheticOptions": ...

class SyntheticCatalog:
    """A generated dataset with its ground-truth aspects."""
    @property
    def dataset(self) -> "Dataset": ...
    @property
    def aspect_names(self) -> _YList[str]: ...
    @property
    def aspect_sizes(self) -> _YList[int]: ...
    @property
    def options(self) -> SyntheticOptions: ...
    @property
    def vocabulary(self) -> _YList[_YList[_YList[str]]]: ...
    @property
    def value_names(self) -> _YList[_YList[str]]: ...
    @property
    def num_aspects(self) -> int: ...
    @property
    def num_items(self) -> int: ...
    @property
    def num_users(self) -> int: ...
    @property
    def item_aspects(self) -> _syn_torch.Tensor: ...
    def item_aspects_numpy(self) -> _syn_np.ndarray: ...
    @property
    def user_preferences(self) -> _syn_torch.Tensor: ...
    def aspect(self, item: int, aspect: int) -> int: ...
    @property
    def attribute_names(self) -> _YList[str]: ...
    def item_values(self, item: int) -> _YList[str]: ...
    def interactions_table(self) -> _YAny: ...

def generate_synthetic(options: _YOptional[SyntheticOptions] = None, **fields: _YAny) -> SyntheticCatalog: ...
# ---- end data: synthetic ----
