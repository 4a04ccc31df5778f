--- ipk.fl: federated learning (in-process clients on the thread pool).
-- Flower's vocabulary: a strategy aggregates client updates each round; a
-- round trains the global model on every sampled client, aggregates, then
-- evaluates centrally on the held-out test split. Clients are ordered by the
-- CID of their update before aggregation (ARCHITECTURE.md section 6), so the
-- result is the same whatever order the threads finished in.
--
-- One module per job, gathered here (callers use `require "ipk.fl"`):
--   ipk.fl.model     trainers and model parameters (softmax regression), in C
--   ipk.fl.tensors   named typed tensor sets (safetensors in memory)
--   ipk.fl.strategy  aggregation strategies (fedavg ... bulyan, user scripts)
--   ipk.fl.rounds    the round loop with in-process clients
--   ipk.fl.steps     the step constructor (train) recipes use
local model = require "ipk.fl.model"
local tensors = require "ipk.fl.tensors"
local strategy = require "ipk.fl.strategy"
local rounds = require "ipk.fl.rounds"
local steps = require "ipk.fl.steps"

local M = {}

-- Library calls (return a value now).
M.model = model
M.tensors = tensors
-- Strategies: ipk.fl.fedadam { eta = 0.1 } etc. (every built-in name),
-- ipk.fl.strategy(name | script | object), ipk.fl.aggregate{...} (one
-- offline round), ipk.fl.strategies() (the list with params).
for _, n in ipairs(strategy.ORDER) do M[n] = strategy[n] end
M.strategy, M.aggregate, M.strategies = strategy.strategy, strategy.aggregate, strategy.list
M.run = rounds.run

-- Step constructors (ipk.fl.train{...} in a recipe's steps).
M.train = steps.train

return M
