"""experiments.tmaze: one TMazeConfig for the runner, the command line and the grids."""

from __future__ import annotations

import dataclasses
import json
import typing

import gymnasium as gym
import pytest
from test_train import logged_settings
from torch import nn

from experiments import presets, registry
from experiments.cli import train_tmaze
from experiments.evaluation import optimal_at
from experiments.tmaze import (
    TMazeConfig,
    is_tmaze_optimal,
    make_maze,
    make_tmaze_drqn,
    resolved_config,
    run_tmaze_experiment,
)
from recurrent_q import updates
from recurrent_q.cells import CELL_NAMES
from recurrent_q.drqn import DRQN
from recurrent_q.q_network import DuelingHead

TINY = dict(length=3, episodes=4, buffer_size=128, warmup_steps=2, vaa_interval=0, vaa_measure_interval=0)


def test_the_config_offers_every_cell_and_checks_the_version():
    assert typing.get_args(typing.get_type_hints(TMazeConfig)["cell"]) == CELL_NAMES
    with pytest.raises(ValueError, match="version must be one of 'classic', 'warmup'"):
        TMazeConfig(version="hot")
    for name, bad in (
        ("length", 0),
        ("episodes", -1),
        ("check_freq", 0),
        ("hidden_size", 2.5),
        ("seed", True),
        ("give_up_after", 0),
    ):
        with pytest.raises(ValueError, match=f"{name} must be (None or )?an integer >= "):
            TMazeConfig(**{name: bad})


def test_the_versions_are_the_librarys_version_type():
    """One ``Version`` (``recurrent_q.multistability``) for both sides: the T-Maze runner offers all of its
    values, the supervised trainer a subset of them and Appendix H's baseline (``auxiliary``: supervised
    only, a loss of the trainer's, not a state of the network the library makes)."""
    from experiments.tmaze import TMAZE_VERSIONS
    from recurrent_q.multistability import VERSIONS, Version
    from supervised.train import VERSIONS as SUPERVISED_VERSIONS
    from supervised.train import SupervisedConfig

    assert VERSIONS == typing.get_args(Version) == ("classic", "warmup", "double", "double-classic")
    assert typing.get_args(typing.get_type_hints(TMazeConfig)["version"]) == TMAZE_VERSIONS == VERSIONS
    supervised = typing.get_args(typing.get_type_hints(SupervisedConfig)["version"])
    assert supervised == SUPERVISED_VERSIONS
    assert set(SUPERVISED_VERSIONS) - {"auxiliary"} < set(VERSIONS)


def test_every_tmaze_grid_run_is_a_valid_config():
    for preset in presets.PRESETS:
        for run in registry.build_grid("tmaze", preset):
            TMazeConfig(**run.config)  # unknown or misspelt settings would raise here


def test_a_config_and_keyword_overrides_give_the_same_run():
    first = run_tmaze_experiment(TMazeConfig(**TINY), seed=1)
    second = run_tmaze_experiment(**TINY, seed=1)
    keys = ("first_optimal_episode", "episodes", "fill_episodes", "optimal_checks", "seed")
    assert {k: first[k] for k in keys} == {k: second[k] for k in keys} and first["seed"] == 1
    assert first["gamma"] == 0.98  # the discount it used (the default's, at this length)


def test_train_tmaze_script_writes_the_run_directory(tmp_path, capsys):
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in TINY.items()]
    result = train_tmaze.run(
        [*flags, "--version", "classic", "--runs-dir", str(tmp_path), "--no-progress-bar"]
    )
    (run_dir,) = tmp_path.iterdir()
    assert run_dir.name.startswith("TMaze-v0__drqn-gru-classic-L3__0__")
    assert (run_dir / "model.zip").is_file() and any(run_dir.glob("events.out.tfevents*"))
    settings = logged_settings(run_dir)  # every TMazeConfig field, under the supervised runs' tag
    assert list(settings) == [field.name for field in dataclasses.fields(TMazeConfig)]
    assert settings["version"] == "classic" and settings["length"] == "3"
    saved = json.loads((run_dir / "result.json").read_text())
    assert saved["episodes"] == result["episodes"] == 4 and saved["args"]["version"] == "classic"
    out = capsys.readouterr().out
    assert "TMaze-v0 L=3 gru classic seed=0: optimal policy" in out
    # the saved model is also played on a corridor 1000 times longer (temporal horizon generalisation)
    model = DRQN.load(run_dir / "model.zip", device="cpu")
    verdict = optimal_at(model.policy.acting_net, 3000)
    said = "final model optimal" if verdict else "final model not optimal"
    assert "On a corridor of length 3000 (1000 × L; " in out and out.rstrip().endswith(said)
    assert saved["generalisation_length"] == 3000 and saved["optimal_at_generalisation_length"] is verdict
    train_tmaze.run([*flags, "--runs-dir", str(tmp_path / "other"), "--generalisation-length", "0"])
    assert "On a corridor" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        train_tmaze.run(["--version", "hot"])


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--history-window", "0"], "history_window must be None or an integer >= 1; got 0"),
        (["--history-window", "4", "--burn-in", "4"], "burn_in (4) must be smaller than history_window (4)"),
        (["--burn-in", "2"], "burn_in (2) needs truncated histories: pass history_window"),
        (["--gradient-steps", "-1"], "gradient_steps must be an integer >= 0; got -1"),
        (["--device", "abacus"], "device must be a torch device such as cpu or cuda, got 'abacus'"),
    ],
)
def test_train_tmaze_names_a_bad_setting_in_one_line(tmp_path, capsys, flags, message):
    """A setting that the flags' parsing does not check (the DRQN's, checked when it is built) is one error
    line naming it, exit status 2, no traceback, and no run directory left behind."""
    run_dir = tmp_path / "run"
    assert train_tmaze.main(["--length", "3", "--logdir", str(run_dir), "--no-progress-bar", *flags]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not run_dir.exists()


def test_decaying_schedules_and_the_best_model(tmp_path):
    """The runner's ε and rate schedules run over --episodes; the first optimal check's model is kept."""
    result = run_tmaze_experiment(
        **(TINY | {"episodes": 60, "length": 2}),
        version="classic",
        exploration_final_rate=0.01,
        learning_rate_final=1e-4,
        check_freq=1,
        best_model_save_path=str(tmp_path),
        target_update_interval=20,  # as recorded (seed 0: optimal at episode 26; with C = 2 not by 60)
    )
    assert result["first_optimal_episode"] is not None, result["optimal_checks"]
    assert (tmp_path / "best_model.zip").is_file()
    best = DRQN.load(tmp_path / "best_model.zip")
    assert is_tmaze_optimal(best, gym.make("TMaze-v0", length=2))
    assert best.exploration_rate < 0.2  # saved during training, after ε began to decay
    bad_values = (("exploration_final_rate", 1.5), ("exploration_fraction", 0.0), ("learning_rate_final", 0))
    for name, bad in bad_values:
        with pytest.raises(ValueError, match=name):
            TMazeConfig(**{name: bad})


class _Scripted:
    """A policy that walks Right to the junction, then turns to the arm ``choose(first, second)`` of the two
    cues it saw (observation 0 Up, 1 Down at the start and at the second cue's cell)."""

    def __init__(self, length: int, cue_position: int | None, choose):
        self.length, self.cue_position, self.choose = length, cue_position, choose

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        step, cues = (0, []) if state is None else state
        if step in (0, self.cue_position):
            cues = [*cues, int(obs)]
        if step < self.length:
            return 0, (step + 1, cues)
        arm = self.choose(cues[0], cues[-1])
        return (1 if arm == 0 else 3), (step + 1, cues)


def test_the_optimality_check_plays_every_layout_of_the_maze():
    """The XOR maze's four layouts: a policy that follows the first cue alone is optimal on TMaze-v0 and
    not on XORTMaze-v0; the XOR of the two cues is optimal there."""
    first_cue = _Scripted(6, None, lambda first, second: first)
    assert is_tmaze_optimal(first_cue, gym.make("TMaze-v0", length=6))
    xor_maze = gym.make("XORTMaze-v0", length=6, cue_position=2)
    assert not is_tmaze_optimal(_Scripted(6, 2, lambda first, second: first), xor_maze)
    assert is_tmaze_optimal(_Scripted(6, 2, lambda first, second: first ^ second), xor_maze)


def test_the_runner_learns_the_xor_maze_and_checks_its_cue_position():
    """GRU + warmup with the runner's defaults learns XORTMaze-v0 at L = 4 (seed 0, the second cue at the
    middle; optimal after 50 episodes here, the budget is 300); cue_position belongs to XORTMaze-v0 only."""
    # one thread (conftest's one_thread): the seeded run is this machine's whatever its cores
    settings = dict(episodes=300, seed=0, stop_when_optimal=True, vaa_interval=0, vaa_measure_interval=0)
    # seeds 0-3 here: optimal after 50, 170, 140, 155 episodes
    result = run_tmaze_experiment(env_id="XORTMaze-v0", length=4, **settings)
    assert result["env_id"] == "XORTMaze-v0" and result["cue_position"] == 2
    longer = make_maze(TMazeConfig(env_id="XORTMaze-v0", length=4), length=400)  # the cue stays at 2
    assert longer.unwrapped.length == 400 and longer.unwrapped.cue_position == 2
    assert result["first_optimal_episode"] is not None and result["optimal_at_end"]
    with pytest.raises(ValueError, match="cue_position is for env_id 'XORTMaze-v0' only"):
        TMazeConfig(cue_position=3)


def test_the_learning_rate_can_be_held_before_its_decay():
    from experiments.tmaze import make_tmaze_drqn
    from recurrent_q import HeldLinearSchedule

    schedule = HeldLinearSchedule(1e-3, 1e-4, 0.5)
    # progress_remaining 1 -> 0: held for the first half, then linear, 1e-4 at the end
    assert [schedule(p) for p in (1.0, 0.75, 0.5)] == [1e-3, 1e-3, 1e-3]
    assert schedule(0.25) == pytest.approx(5.5e-4) and schedule(0.0) == pytest.approx(1e-4)
    default = make_tmaze_drqn(length=3, vaa_interval=0)  # the runner's default since round 10
    assert isinstance(default.learning_rate, HeldLinearSchedule)
    assert default.lr_schedule(0.75) == pytest.approx(1e-3)
    assert default.lr_schedule(0.0) == pytest.approx(1e-4)
    whole = make_tmaze_drqn(length=3, learning_rate_hold_fraction=0.0, vaa_interval=0)
    assert whole.lr_schedule(0.5) == pytest.approx(5.5e-4)  # round 8's: decays over the whole budget
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="learning_rate_hold_fraction must be a number in"):
            make_tmaze_drqn(length=3, learning_rate_hold_fraction=bad)


def test_the_rate_decay_can_start_at_the_first_optimal_check(tmp_path):
    """learning_rate_decay_on_optimal: the same run up to its first optimal check, then the decay starts
    there with its usual length (half the budget) and ends at 1e-4; the saved model keeps the schedule."""
    from recurrent_q import HeldLinearSchedule

    settings = dict(length=5, seed=0, episodes=200, check_freq=5, vaa_interval=0, vaa_measure_interval=0)
    held = run_tmaze_experiment(**settings)  # one thread: conftest's one_thread
    early = run_tmaze_experiment(
        learning_rate_decay_on_optimal=True, save_path=str(tmp_path / "model"), **settings
    )
    first = early["first_optimal_episode"]
    # before the hold's end (episode 100); where depends on the CPU: 70 on an Intel Xeon (with a budget of
    # 100 episodes, whose hold ended at 50, it was 20 on an AMD EPYC and 75 on the Xeon)
    assert first is not None and first < 100
    assert held["first_optimal_episode"] == first  # the same run up to there
    assert held["optimal_checks"][0] == early["optimal_checks"][0]
    schedule = DRQN.load(tmp_path / "model.zip").learning_rate
    assert isinstance(schedule, HeldLinearSchedule)
    assert schedule.decay_start == pytest.approx(first / 200)
    assert schedule(1 - first / 200) == pytest.approx(1e-3)
    assert schedule(1 - (first + 50) / 200) == pytest.approx(5.5e-4)  # halfway through its 100 episodes
    assert schedule(1 - (first + 100) / 200) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="end_rate_hold needs a model whose learning_rate is a HeldLinear"):
        run_tmaze_experiment(learning_rate_decay_on_optimal=True, learning_rate_final=None, **settings)


def test_more_gradient_steps_can_start_at_the_first_optimal_check(tmp_path):
    """gradient_steps_after_optimal: the same run up to its first optimal check, then that many gradient
    steps per episode (the saved model has them); a bad value is named."""
    settings = dict(length=3, seed=0, episodes=60, check_freq=5, vaa_interval=0, vaa_measure_interval=0)
    plain = run_tmaze_experiment(**settings)  # one thread: conftest's one_thread
    more = run_tmaze_experiment(gradient_steps_after_optimal=35, save_path=str(tmp_path / "m"), **settings)
    first = more["first_optimal_episode"]
    assert first is not None and first < 60 and plain["first_optimal_episode"] == first
    assert plain["timesteps_to_optimal"] == more["timesteps_to_optimal"]  # the same run up to there
    saved = DRQN.load(tmp_path / "m.zip")
    assert saved.gradient_steps == 35 and saved.num_train_episodes == 60
    assert saved._n_updates == 20 * first + 35 * (60 - first)  # the episodes after the check got 35
    with pytest.raises(
        ValueError, match="gradient_steps_after_optimal must be None or an integer >= 1; got 0"
    ):
        TMazeConfig(gradient_steps_after_optimal=0)


def test_the_hold_term_can_end_at_the_first_optimal_check(tmp_path, monkeypatch):
    """hold_coef_after_optimal = 0: the run with the hold term up to its first optimal check, then without
    (the saved model's λ_h is 0); the callback names what it cannot change."""
    from experiments.tmaze import TMazeOptimalCallback

    settings = dict(length=3, seed=0, episodes=60, check_freq=5, vaa_interval=0, vaa_measure_interval=0)
    settings |= dict(hold_coef=1.0, hold_steps=20)
    calls = []
    hold_term = updates.hold_term
    monkeypatch.setattr(updates, "hold_term", lambda *a, **k: calls.append(1) or hold_term(*a, **k))
    held = run_tmaze_experiment(**settings)
    held_calls = len(calls)
    ended = run_tmaze_experiment(hold_coef_after_optimal=0.0, save_path=str(tmp_path / "m"), **settings)
    ended_calls = len(calls) - held_calls
    first = ended["first_optimal_episode"]
    assert first is not None and first < 60 and held["first_optimal_episode"] == first
    assert held["timesteps_to_optimal"] == ended["timesteps_to_optimal"]
    assert DRQN.load(tmp_path / "m.zip").hold_coef == 0.0
    assert 0 < ended_calls <= 20 * first < held_calls  # the term is computed up to the check only
    for bad in (-1.0, float("inf")):
        with pytest.raises(ValueError, match=r"hold_coef_after_optimal must be None or a number in \[0, inf"):
            TMazeConfig(hold_coef_after_optimal=bad)
    with pytest.raises(ValueError, match="after_optimal must be one of 'gradient_steps', 'hold_coef'"):
        TMazeOptimalCallback(after_optimal={"learning_rate": 1e-4})
    model = make_tmaze_drqn(length=3, seed=0)
    callback = TMazeOptimalCallback(after_optimal={"hold_coef": float("nan")})
    with pytest.raises(ValueError, match="after_optimal: hold_coef must be a finite number >= 0; got nan"):
        callback.init_callback(model)
    assert model.hold_coef == 0.0  # left as it was


def test_the_discount_is_a_setting_of_the_runner():
    """The paper's 0.98 up to L = 137, the margin's γ beyond (experiments.evaluation.default_gamma), unless
    set; the run's record says which it used."""
    from experiments.evaluation import default_gamma
    from experiments.tmaze import make_tmaze_drqn

    assert make_tmaze_drqn(length=3, vaa_interval=0).gamma == 0.98  # the paper's
    assert make_tmaze_drqn(length=3, gamma=0.99, vaa_interval=0).gamma == 0.99
    assert make_tmaze_drqn(length=200, vaa_interval=0).gamma == default_gamma(200) != 0.98
    assert make_tmaze_drqn(length=200, gamma=0.98, vaa_interval=0).gamma == 0.98
    for bad in (0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="gamma must be None or a number in"):
            TMazeConfig(gamma=bad)


def test_the_runner_trains_every_step_of_the_sampled_episodes_unless_told_otherwise():
    """Round 21 (docs/drqn-parity.md): the runner's loss is on every live step of the episodes that hold the
    sampled transitions; ``--train-mode histories`` gives Algorithm 4's (the class's own default)."""
    model = make_tmaze_drqn(length=3, version="classic", buffer_size=1024, vaa_interval=0)
    assert TMazeConfig().train_mode is None  # the length's: sequences up to L = 200, histories beyond
    assert model.train_mode == "sequences" and DRQN("RecurrentQPolicy", "TMaze-v0").train_mode == "histories"
    model.learn(200)  # the buffer's fill by the exploration policy: no transition evicted
    batch = model.replay_buffer.sample(8, model.policy.rng, model.train_mode, model.n_steps)
    # every step of each sampled episode is trained, not only the sampled ones
    assert (batch.weights > 0).sum(1).tolist() == batch.episode_lengths.tolist()
    histories = model.replay_buffer.sample(8, model.policy.rng, "histories", model.n_steps)
    assert histories.weights.sum() == 8
    algorithm_4 = TMazeConfig(
        length=3, version="classic", buffer_size=128, vaa_interval=0, train_mode="histories"
    )
    assert make_tmaze_drqn(algorithm_4).train_mode == "histories"


def test_the_runner_trains_long_corridors_on_the_sampled_steps_unless_told_otherwise():
    """Round 24 (docs/drqn-parity.md): beyond L = 200 the runner's loss is Algorithm 4's (the whole-episode
    loss needed more episodes at L = 500 and 1 000), but every step of the windows with a burn-in; set, it is
    kept; the resolved settings of a grid run and a run's record give the mode used."""
    from experiments.optimality import default_gamma
    from experiments.runners import tmaze_settings
    from experiments.tmaze_config import SEQUENCES_MAX_LENGTH, default_train_mode

    assert SEQUENCES_MAX_LENGTH == 200
    modes = [default_train_mode(n) for n in (1, 20, 200, 201, 500, 1000)]
    assert modes == ["sequences"] * 3 + ["histories"] * 3
    long = dict(length=201, version="classic", vaa_interval=0)
    assert make_tmaze_drqn(**long).train_mode == "histories"
    assert make_tmaze_drqn(**long, train_mode="sequences").train_mode == "sequences"
    assert tmaze_settings({"length": 500})["train_mode"] == "histories"
    assert tmaze_settings({"length": 50})["train_mode"] == "sequences"
    assert tmaze_settings({"length": 500, "train_mode": "sequences"})["train_mode"] == "sequences"
    # the runner's, the grid's and the record's one resolution
    resolved = resolved_config(TMazeConfig(length=500))
    assert (resolved.train_mode, resolved.gamma) == ("histories", default_gamma(500))
    assert resolved.gamma != resolved_config(TMazeConfig()).gamma == 0.98
    kept = resolved_config(TMazeConfig(length=500, gamma=0.9, train_mode="sequences"))
    assert (kept.train_mode, kept.gamma) == ("sequences", 0.9)
    windows = make_tmaze_drqn(**long, history_window=40, burn_in=20)  # a burn-in trains the windows' steps
    assert windows.train_mode == "sequences"
    assert make_tmaze_drqn(**long, history_window=40).train_mode == "histories"
    record = run_tmaze_experiment(length=201, version="classic", episodes=0, vaa_interval=0, buffer_size=1024)
    assert (record["train_mode"], record["gamma"]) == ("histories", default_gamma(201))
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="length must be an integer >= 1"):
            default_train_mode(bad)


def test_the_runner_builds_a_dueling_head_when_told():
    """``TMazeConfig.dueling`` (the runner's ``--dueling``): the Q head of the online, target and averaged
    networks is a ``DuelingHead``; the paper's linear head otherwise."""
    model = make_tmaze_drqn(length=3, version="classic", dueling=True, vaa_interval=0)
    networks = (model.policy.q_net, model.policy.q_net_target, model.policy.q_net_average)
    assert all(isinstance(network.head, DuelingHead) for network in networks)
    assert isinstance(make_tmaze_drqn(length=3, version="classic", vaa_interval=0).q_net.head, nn.Linear)


def test_the_runner_acts_in_several_mazes_at_once_when_told():
    """``--n-envs 3``: three mazes in a DummyVecEnv, one batched forward per step, every finished episode
    stored whole and followed by its gradient steps; ``n_envs`` below 1 is named in its error."""
    model = make_tmaze_drqn(length=5, version="classic", n_envs=3, buffer_size=256, vaa_interval=0, seed=0)
    assert model.env.num_envs == 3
    model.learn(10**9, max_episodes=6)
    assert model.num_train_episodes == 6 and model._n_updates == 6 * model.gradient_steps
    buffer = model.replay_buffer
    assert all(buffer.lengths[slot] >= 6 for slot in buffer.queue)  # whole episodes: at least L + 1 steps
    with pytest.raises(ValueError, match="n_envs must be an integer >= 1; got 0"):
        TMazeConfig(n_envs=0)


def test_the_runner_trains_truncated_histories_when_told():
    """``--history-window W --burn-in B`` reach DRQN, train, and are recorded; off by default."""
    assert TMazeConfig().history_window is None and TMazeConfig().burn_in == 0
    result = run_tmaze_experiment(
        length=20,
        version="classic",
        seed=0,
        episodes=3,
        buffer_size=512,
        history_window=8,
        burn_in=3,
        vaa_interval=0,
        vaa_measure_interval=0,
    )
    assert result["history_window"] == 8 and result["burn_in"] == 3 and result["episodes"] == 3
    with pytest.raises(ValueError, match="burn_in .* needs truncated histories"):
        make_tmaze_drqn(length=3, burn_in=2, vaa_interval=0)


def test_a_run_gives_up_after_its_window_with_the_schedules_of_the_whole_budget():
    """give_up_after=10 stops a run not yet optimal after the check of episode 10, its learning rate still
    held at 1e-3 (the schedule runs over the 40-episode budget); a run that reached the optimum goes on."""
    from experiments.tmaze import TMazeOptimalCallback, make_tmaze_drqn

    settings = dict(length=10, episodes=40, buffer_size=256, warmup_steps=2, vaa_interval=0, seed=0)
    model = make_tmaze_drqn(**settings)
    callback = TMazeOptimalCallback(make_maze(TMazeConfig(length=10)), check_freq=5, give_up_after=10)
    model.learn(10**9, callback=callback, max_episodes=40)
    assert [episode for episode, _ in callback.checks] == [
        0,
        5,
        10,
    ] and callback.first_optimal_episode is None
    assert model.num_train_episodes <= 11 and model.policy.optimizer.param_groups[0]["lr"] == 1e-3
    result = run_tmaze_experiment(
        **{**TINY, "length": 2, "episodes": 20, "check_freq": 5, "give_up_after": 5}
    )
    if result["first_optimal_episode"] == 5:  # as here (AMD EPYC): the run goes on to its budget
        assert result["episodes"] == 20
    else:
        assert result["first_optimal_episode"] is None and result["episodes"] <= 6, result
