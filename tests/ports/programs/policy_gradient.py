"""REINFORCE on a small corridor environment: a policy network giving action logits, actions
sampled from a Categorical distribution, log-probabilities kept per step, discounted returns
computed backwards and normalized, and the policy loss summed with torch.stack / torch.cat."""

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.distributions import Categorical

gamma = 0.99
eps = np.finfo(np.float32).eps.item()


class Corridor:
    """Positions 0..6; start at 3; reward 1 at 6, -1 at 0; at most 8 steps."""

    def reset(self):
        self.position, self.steps = 3, 0
        return self.observation()

    def observation(self):
        state = np.zeros(7)
        state[self.position] = 1.0
        return state

    def step(self, action):
        self.position += 1 if action == 1 else -1
        self.steps += 1
        reward = 1.0 if self.position == 6 else (-1.0 if self.position == 0 else -0.01)
        done = self.position in (0, 6) or self.steps >= 8
        return self.observation(), reward, done


class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.affine1 = nn.Linear(7, 16)
        self.dropout = nn.Dropout(p=0.1)
        self.affine2 = nn.Linear(16, 2)
        self.saved_log_probs = []
        self.rewards = []

    def forward(self, x):
        x = torch.relu(self.dropout(self.affine1(x)))
        return self.affine2(x)


def select_action(policy, state):
    state = torch.from_numpy(state).to(torch.get_default_dtype()).unsqueeze(0)
    logits = policy(state)
    m = Categorical(logits=logits)
    action = m.sample()
    policy.saved_log_probs.append(m.log_prob(action))
    return action.item(), m.entropy().item()


def finish_episode(policy, optimizer):
    R = 0
    returns = []
    for r in policy.rewards[::-1]:
        R = r + gamma * R
        returns.insert(0, R)
    returns = torch.tensor(returns)
    returns = (returns - returns.mean()) / (returns.std() + eps)
    policy_loss = [-log_prob * R for log_prob, R in zip(policy.saved_log_probs, returns)]
    optimizer.zero_grad()
    loss = torch.cat(policy_loss).sum()
    loss.backward()
    optimizer.step()
    del policy.rewards[:]
    del policy.saved_log_probs[:]
    return loss.item()


def build():
    return {"policy": Policy()}


def train(models):
    policy = models["policy"]
    optimizer = optim.Adam(policy.parameters(), lr=1e-2)
    env = Corridor()
    episode_rewards, losses, actions, entropies = [], [], [], []
    for episode in range(4):
        state, total = env.reset(), 0.0
        done = False
        while not done:
            action, entropy = select_action(policy, state)
            state, reward, done = env.step(action)
            policy.rewards.append(reward)
            total += reward
            actions.append(action)
            entropies.append(entropy)
        episode_rewards.append(total)
        losses.append(finish_episode(policy, optimizer))
    return {"episode_rewards": episode_rewards, "losses": losses, "actions": actions,
            "entropies": entropies}
