"""`Registry`: registration by name, refusal of duplicates, lookups, parameter checks (config classes and plain
constructors), and the public lookups built on it for strategies and policies."""

import dataclasses
import inspect

import pytest

from hf_prune.registry import Registry


def make_registry():
    registry = Registry("shape", "shapes")

    @registry.register
    class Square:
        name, summary = "square", "four equal sides"

        def __init__(self, side: float = 1.0):
            self.side = side

    @dataclasses.dataclass
    class CircleConfig:
        radius: float = 1.0

    @registry.register
    class Circle:
        name, summary, config_class = "circle", "round", CircleConfig

        def __init__(self, **params):
            self.config = CircleConfig(**params)

    return registry, Square


def test_register_lookup_and_build():
    registry, Square = make_registry()
    assert registry.names() == ["circle", "square"] and "square" in registry and "oval" not in registry
    assert registry.get("square") is Square
    assert registry.summaries() == {"circle": "round", "square": "four equal sides"}
    assert registry.build("square", side=2.0).side == 2.0
    assert registry.build("circle", radius=3.0).config.radius == 3.0
    assert registry.parameters("circle") == {"radius": 1.0}
    assert registry.parameters("square") == {"side": 1.0}


def test_unknown_names_and_parameters_list_the_known_ones():
    registry, _ = make_registry()
    with pytest.raises(ValueError, match="Unknown shape 'oval'. Known shapes: circle, square"):
        registry.get("oval")
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['sides'\]; it accepts \['side'\]"):
        registry.build("square", sides=4)
    with pytest.raises(TypeError, match=r"it accepts \['radius'\]"):
        registry.build("circle", side=1)


def test_duplicates_and_nameless_classes_are_refused():
    registry, Square = make_registry()
    registry.register(Square)  # the same class again is fine

    class Other:
        name, summary = "square", "an impostor"

    with pytest.raises(ValueError, match="already registered"):
        registry.register(Other)

    class Nameless:
        summary = "?"

    with pytest.raises(ValueError, match="needs a class attribute `name`"):
        registry.register(Nameless)


def test_public_strategy_and_policy_lookups():
    from hf_prune import is_strategy, strategy_info
    from hf_prune.dynamic import is_policy, list_policies

    assert is_strategy("dyn_unc") and not is_strategy("ucb")
    assert is_policy("ucb") and not is_policy("dyn_unc")
    info = strategy_info("dyn_unc")
    assert info["parameters"]["window"] == {"default": 10, "help": info["parameters"]["window"]["help"]}
    assert info["keep"] == "high" and info["requires"] == ["p_target"] and "He" in info["citation"]
    assert "ccs" in strategy_info("ccs")["parameters"]["score"]["help"] or strategy_info("ccs")["parameters"]["score"]
    assert set(list_policies()) >= {"random_dynamic", "uncertainty_ema", "epsilon_greedy", "ucb", "infobatch"}
    params = strategy_info("el2n")["parameters"]
    assert params["epoch"]["default"] is None and params["epoch"]["default"] is not inspect.Parameter.empty
