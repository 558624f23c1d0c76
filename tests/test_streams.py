"""Per-member random streams: SplitMix64 bit for bit, independence from other members, masks."""

import torch

from maven.streams import Streams, stream_key

M64 = (1 << 64) - 1


def splitmix64_reference(state: int, n: int) -> list[int]:
    """The published SplitMix64 in plain Python integers."""
    out = []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        out.append(z ^ (z >> 31))
    return out


def test_bits_are_splitmix64_exactly():
    streams = Streams([7, 123456789], "test")
    drawn = torch.cat([streams.bits(5), streams.bits(3)], dim=1)  # two calls continue the stream
    for k, seed in enumerate([7, 123456789]):
        expected = splitmix64_reference(stream_key(seed, "test") & M64, 8)
        assert [int(x) & M64 for x in drawn[k]] == expected


def test_a_member_draws_the_same_numbers_alone_or_in_any_population():
    alone = Streams([5], "explore").uniform(40)
    crowd = Streams([1, 9, 5, 2], "explore").uniform(40)
    assert torch.equal(alone[0], crowd[2])


def test_masked_members_do_not_advance():
    streams = Streams([1, 2], "z")
    streams.uniform(10, members=torch.tensor([True, False]))
    fresh = Streams([1, 2], "z")
    assert torch.equal(streams.uniform(4)[1], fresh.uniform(4)[1])
    assert not torch.equal(streams.uniform(4)[0], fresh.uniform(4)[0])


def test_uniform_and_integers_are_in_range_and_roughly_uniform():
    streams = Streams(list(range(4)), "u")
    u = streams.uniform(20_000)
    assert u.min() >= 0 and u.max() < 1 and abs(float(u.mean()) - 0.5) < 0.01
    ints = streams.integers(torch.tensor([1, 2, 3, 7]), 20_000)
    for k, high in enumerate([1, 2, 3, 7]):
        counts = torch.bincount(ints[k], minlength=high)
        assert len(counts) == high and counts.min() > 20_000 / high * 0.9


def test_purposes_and_seeds_give_different_streams():
    a = Streams([3], "explore").bits(4)
    assert not torch.equal(a, Streams([3], "replay").bits(4))
    assert not torch.equal(a, Streams([4], "explore").bits(4))


def test_member_state_round_trips():
    streams = Streams([8, 9], "replay")
    streams.bits(17)
    saved = streams.member_state(1)
    expected = streams.bits(3)[1]
    restored = Streams([8, 9], "replay")
    restored.load_member_state(1, saved)
    assert torch.equal(restored.bits(3)[1], expected)
