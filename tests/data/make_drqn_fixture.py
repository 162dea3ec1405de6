"""Write ``tests/data/drqn_tmaze3.zip`` (a small DRQN saved by ``DRQN.save``) and ``drqn_tmaze3.json`` (what
it predicted when saved), the fixture of ``tests/test_save_load.py::test_a_model_saved_before_the_slim_drqn``.

The committed pair was written by commit 69a8c55, before episode collection, the TensorBoard helpers and
the VAA monitoring left ``recurrent_q/drqn.py``: the test checks that such a zip still loads, predicts the
same and trains on. Running this script again writes a zip of the code of the day (a new fixture, not that
one): ``python tests/data/make_drqn_fixture.py`` from the repository's root.
"""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th

import tmaze_gym
from recurrent_q.drqn import DRQN
from recurrent_q.multistability import WarmupConfig

HERE = Path(__file__).resolve().parent
LENGTH = 3
SETTINGS = dict(
    buffer_size=64,
    batch_size=8,
    gradient_steps=2,
    target_update_interval=2,
    use_warmup=True,
    vaa_interval=2,
    vaa_steps=20,
    vaa_measure_interval=4,
    vaa_measure_steps=30,
    vaa_batch_size=16,
    seed=0,
)
POLICY_KWARGS = dict(hidden_size=16, use_previous_reward=True, init="xavier")
WARMUP = dict(steps=3, batch_size=16)
EPISODES = 4


def histories(n: int, seed: int) -> list[dict[str, list]]:
    """``n`` episodes of the exploration policy on ``TMaze-v0`` of length ``LENGTH``, layouts alternating."""
    env = gym.make("TMaze-v0", length=LENGTH)
    probs = tmaze_gym.exploration_policy()
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(n):
        obs, _ = env.reset(seed=int(rng.integers(2**31)), options={"layout": ("up", "down")[i % 2]})
        observations, actions, rewards = [int(obs)], [], []
        done = False
        while not done:
            action = int(rng.choice(len(probs), p=probs))
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(int(obs))
            actions.append(action)
            rewards.append(float(reward))
            done = terminated or truncated
        episodes.append({"observations": observations, "actions": actions, "rewards": rewards})
    return episodes


def q_values(model: DRQN, episode: dict[str, list]) -> np.ndarray:
    """``Q_θ(η_{0:t}, ·)`` for every prefix of the episode, ``[T + 1, |A|]``, in one pass."""
    observations = th.as_tensor([episode["observations"]])
    actions = th.as_tensor([episode["actions"]])
    rewards = th.as_tensor([episode["rewards"]], dtype=th.float32)
    with th.no_grad():
        x = model.q_net.episode_features(observations, actions, rewards)
        return model.q_net.q_values(x, th.as_tensor([x.shape[1]]))[0].numpy()


def predicted_actions(model: DRQN, episode: dict[str, list]) -> list[int]:
    """``predict``'s greedy action at every step of the episode, fed the episode's own actions and rewards."""
    state, actions = None, []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="use_previous_reward=True")
        for t, obs in enumerate(episode["observations"]):
            action, state = model.predict(np.array(obs), state, np.array([t == 0]), deterministic=True)
            actions.append(int(action))
            if t < len(episode["actions"]):
                state = state._replace(
                    previous_action=np.full(1, episode["actions"][t], dtype=np.int64),
                    previous_reward=np.full(1, episode["rewards"][t], dtype=np.float32),
                )
    return actions


def main() -> None:
    model = DRQN(
        "RecurrentQPolicy",
        gym.make("TMaze-v0", length=LENGTH),
        warmup_config=WarmupConfig(**WARMUP),
        policy_kwargs=POLICY_KWARGS,
        **SETTINGS,
    )
    model.learn(10**9, max_episodes=EPISODES)
    model.save(HERE / "drqn_tmaze3.zip")
    episodes = histories(4, seed=1)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout
    record = {
        "saved_by_commit": commit.strip(),
        "length": LENGTH,
        "settings": SETTINGS,
        "policy_kwargs": POLICY_KWARGS,
        "warmup_config": WARMUP,
        "num_train_episodes": model.num_train_episodes,
        "num_timesteps": model.num_timesteps,
        "warmup_timestep": model.warmup_timestep,
        "episodes": [
            {
                **episode,
                "q_values": q_values(model, episode).tolist(),
                "predicted_actions": predicted_actions(model, episode),
            }
            for episode in episodes
        ],
    }
    (HERE / "drqn_tmaze3.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
