"""Strategy configs: typed dataclasses with checks, a JSON round trip, parsing from command-line strings through the
field types, and strategies built from them that hold no state between calls."""

import numpy as np
import pytest

from hf_prune import ScoreRecord, get_strategy, list_strategies
from hf_prune.strategies import get_strategy_class


@pytest.mark.parametrize("name", sorted(list_strategies()))
def test_every_config_round_trips_through_json_and_strings(name):
    config_class = get_strategy_class(name).config_class
    config = config_class()
    assert config_class.from_json_string(config.to_json_string()) == config
    assert config_class.from_dict(config.to_dict()) == config
    strings = {k: ("null" if v is None else str(v).lower() if isinstance(v, bool) else str(v))
               for k, v in config.to_dict().items() if not isinstance(v, dict)}  # fmt: skip
    assert config_class.from_strings(strings) == config
    assert get_strategy(name, config=config).config is config


def test_strings_are_parsed_as_the_field_types():
    from hf_prune.strategies.ccs import CCSConfig
    from hf_prune.strategies.el2n import EL2NConfig
    from hf_prune.strategies.ssp import SSPConfig

    assert SSPConfig.from_strings({"normalize": "false", "num_clusters": "7"}) == SSPConfig(normalize=False,
                                                                                           num_clusters=7)  # fmt: skip
    assert EL2NConfig.from_strings({"epoch": "none"}).epoch is None
    assert CCSConfig.from_strings({"score": "dyn_unc", "score_params": '{"window": 3}'}).score_params == {"window": 3}
    with pytest.raises(ValueError, match="Parameter 'window' of DynUncConfig: expected int, got 'ten'"):
        get_strategy_class("dyn_unc").config_class.from_strings({"window": "ten"})
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['windw'\]"):
        get_strategy_class("dyn_unc").config_class.from_strings({"windw": "3"})


def test_checks_in_post_init_say_what_to_do():
    with pytest.raises(ValueError, match="window must be an integer >= 2"):
        get_strategy("dyn_unc", window=1)
    with pytest.raises(ValueError, match="region must be one of"):
        get_strategy("cartography", region="middle")
    with pytest.raises(ValueError, match="cannot stratify its own scores"):
        get_strategy("ccs", score="ccs")
    with pytest.raises(TypeError, match="either a config or keyword parameters"):
        get_strategy("dyn_unc", config=get_strategy_class("dyn_unc").config_class(), window=3)


def test_compute_is_pure_and_returns_its_provenance():
    rng = np.random.default_rng(0)
    a = ScoreRecord.from_arrays({"el2n": rng.random((10, 20))})
    b = ScoreRecord.from_arrays({"el2n": rng.random((4, 20))})
    strategy = get_strategy("el2n")
    before = dict(vars(strategy))
    first = strategy.compute(a)
    assert first.provenance == {"el2n_epochs": [0], "num_runs": 1}
    assert strategy.compute([a, b]).provenance == {"el2n_epochs": [0, 0], "num_runs": 2}
    assert vars(strategy) == before  # nothing stored between calls
    result = strategy.select(a, 0.5)
    assert result.provenance["el2n_epochs"] == [0] and result.provenance["method"]["title"] == "EL2N"
