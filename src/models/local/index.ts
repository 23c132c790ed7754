export { KNOWN_MODELS, LocalModelError, knownModel, localModelPath, modelFile, modelsDir, type KnownModel } from './catalog';
export { fetchModel, isFetched, type FetchOptions, type FetchProgress, type FetchResult } from './fetch-model';
export { LocalEngine, LocalModelMissingError, sharedLocalEngine } from './local-engine';
export { chatTurns, localLanguageModel, type LocalModelOptions } from './local-model';
export { answerSchema, grammarSchema } from './tool-grammar';
