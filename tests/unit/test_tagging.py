"""Tagged back-translation: the tag starts every synthetic source and nothing else."""

from helpers import N_SYN, setup_task


def test_tag_added_to_dictionary_and_only_to_synthetic_sources(corpus):
    task, _ = setup_task([str(corpus.bin), "--task", "bt_translation", "-s", corpus.src, "-t", corpus.tgt,
                          "--bt-data", str(corpus.syn), "--bt-tag", "<BT>",
                          "--bt-noise-word-dropout", "0.1", "--bt-noise-shuffle-distance", "3"])
    tag = task.src_dict.index("<BT>")
    assert tag != task.src_dict.unk() and tag == len(task.src_dict) - 1
    assert task.tgt_dict.index("<BT>") == task.tgt_dict.unk()
    for split in ("train", "valid", "test"):
        task.load_dataset(split)
    train = task.dataset("train")
    n_tagged = 0
    for i in range(len(train)):
        item = train[i]
        src = item["source"].tolist()
        if item["bt_synthetic"]:
            assert src[0] == tag and tag not in src[1:]
            n_tagged += 1
        else:
            assert tag not in src
    assert n_tagged == N_SYN
    for split in ("valid", "test"):
        ds = task.dataset(split)
        assert all(tag not in ds[i]["source"].tolist() for i in range(len(ds)))


def test_synthetic_sizes_count_the_tag(corpus):
    task, _ = setup_task([str(corpus.bin), "--task", "bt_translation", "-s", corpus.src, "-t", corpus.tgt,
                          "--bt-data", str(corpus.syn), "--bt-tag", "<BT>"])
    task.load_dataset("train")
    train = task.dataset("train")
    for i in range(len(train)):
        assert train.src_sizes[i] == len(train[i]["source"])
