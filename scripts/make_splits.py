"""Write the built-in open-set protocols to ``src/openmer/splits/<dataset>.json``.

Deterministic and re-runnable: ``python scripts/make_splits.py`` rewrites the same bytes (seed 0).
It needs no data: classes and groups are fixed by the datasets' documentation (shared/README.md,
shared/data/ravdess-au-mfcc/FORMAT.md) and, for ``cross-speech``, by the label vocabulary
(``openmer.datasets.vocabulary``). ``--check`` only compares and exits 1 on a difference.

If a protocol has to change, bump its ``version`` here so that results stay traceable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dataclasses import replace

from openmer.datasets import EMODB_CLASSES, EMODB_SPEAKER_GENDER, MELD_CLASSES, MELD_SPLITS, RAVDESS_CLASSES
from openmer.datasets.vocabulary import common_classes
from openmer.protocol import GroupPartition, Protocol, make_protocol, write_protocol

SEED = 0
N_SPLITS = 4
OUT_DIR = Path(__file__).resolve().parents[1] / "src" / "openmer" / "splits"

# EmoDB: fixed gender-balanced speaker partition, drawn once with
# group_partition(EMODB_SPEAKER_GENDER, counts=(3, 1, 1), strata=EMODB_SPEAKER_GENDER, seed=0)
# (tests/test_protocol.py checks that this still holds) and frozen here.
EMODB_PARTITION = GroupPartition(
    train_groups=("10", "11", "13", "14", "15", "16"),
    val_groups=("03", "08"),
    test_groups=("09", "12"),
)


def _actors(first: int, last: int) -> tuple[str, ...]:
    return tuple(f"{a:02d}" for a in range(first, last + 1))


def _prefixed(partitions: dict[str, GroupPartition]) -> GroupPartition:
    """One partition of several corpora's groups, each group as ``"<corpus>/<group>"``
    (the ids :func:`openmer.data.manifest.concat_manifests` gives)."""
    return GroupPartition(*(
        tuple(f"{corpus}/{g}" for corpus, p in partitions.items() for g in getattr(p, f"{part}_groups"))
        for part in ("train", "val", "test")
    ))


def build_protocols() -> dict[str, Protocol]:
    """The built-in protocols, by dataset name."""
    ravdess = make_protocol(
        "ravdess",
        RAVDESS_CLASSES,
        groups=_actors(1, 24),
        level_sizes=[6, 4, 2],
        n_splits=N_SPLITS,
        seed=SEED,
        partition=GroupPartition(_actors(1, 16), _actors(17, 20), _actors(21, 24)),
        note=(
            "Actor-independent partition of the 24 RAVDESS actors: train actors 01-16, val actors 17-20, "
            "test actors 21-24 (odd actors male, even female: val and test 2 male + 2 female each). "
            "Classes in RAVDESS emotion-code order 01..08. Unknown classes are removed from train and val; "
            "model selection uses val only, never test."
        ),
    )
    emodb = make_protocol(
        "emodb",
        EMODB_CLASSES,
        groups=tuple(EMODB_SPEAKER_GENDER),
        level_sizes=[5, 4, 3, 2],
        n_splits=N_SPLITS,
        seed=SEED,
        partition=EMODB_PARTITION,
        note=(
            "Speaker-independent, gender-balanced partition of the 10 EmoDB speakers: train 10, 11, 15 (male) "
            "and 13, 14, 16 (female); val 03 (male) and 08 (female); test 12 (male) and 09 (female). Drawn once "
            "with group_partition(counts=(3, 1, 1), strata=gender, seed=0) and fixed. Unknown classes are "
            "removed from train and val; model selection uses val only, never test."
        ),
    )
    meld = make_protocol(
        "meld",
        MELD_CLASSES,
        groups=MELD_SPLITS,
        level_sizes=[5, 4, 3, 2],
        n_splits=N_SPLITS,
        seed=SEED,
        partition=GroupPartition(("train",), ("dev",), ("test",)),
        note=(
            "MELD's own split files: train_sent_emo.csv = train, dev_sent_emo.csv = val, test_sent_emo.csv = test "
            "(groups are the split names, as openmer.data.load_meld(split='all') sets them). Speakers recur "
            "across MELD's splits (main Friends characters), so this partition is not speaker-independent. "
            "Unknown classes are removed from train and val; model selection uses val only, never test."
        ),
    )
    ravdess_speech = replace(ravdess, dataset="ravdess-speech", note=(
        "The RAVDESS protocol (same actor-independent partition, same known/unknown splits) for the "
        "1440 speech clips as audio + statement: train actors 01-16, val actors 17-20, test actors 21-24 "
        "(odd actors male, even female: val and test 2 male + 2 female each). Classes in RAVDESS emotion-code "
        "order 01..08. Unknown classes are removed from train and val; model selection uses val only, never test."
    ))
    corpora = {"emodb": emodb.partition, "ravdess-speech": ravdess.partition}
    cross_speech = make_protocol(
        "cross-speech",
        common_classes(*corpora),
        groups=None,
        level_sizes=[5, 4, 3, 2],
        n_splits=N_SPLITS,
        seed=SEED,
        partition=_prefixed(corpora),
        note=(
            "Cross-corpus EmoDB <-> RAVDESS speech. Classes: the 6 emotions both corpora have, by their shared "
            "names (openmer.data.vocabulary); each split names the K known ones. The partition is each corpus's "
            "own (the emodb and ravdess-speech protocols), groups prefixed 'emodb/' and 'ravdess-speech/'. A run "
            "in direction A -> B trains on A's train groups (known classes only), selects on A's val groups "
            "(known classes only, val only, never test), and tests on A's test groups (in-corpus) and on B's "
            "test groups (cross-corpus); there, every class of the test corpus outside the known set is unknown "
            "(the shared ones left out, and EmoDB's boredom or RAVDESS's calm and surprise)."
        ),
    )
    return {p.dataset: p for p in (ravdess, emodb, meld, ravdess_speech, cross_speech)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder to write <dataset>.json into")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out; write nothing")
    args = parser.parse_args(argv)
    status = 0
    for name, proto in build_protocols().items():
        target = args.out / f"{name}.json"
        if args.check:
            same = target.is_file() and target.read_text(encoding="utf-8") == proto.to_json()
            print(f"{target}: {'up to date' if same else 'DIFFERS'}")
            status |= not same
        else:
            write_protocol(proto, target)
            print(f"wrote {target}")
    return status


if __name__ == "__main__":
    sys.exit(main())
