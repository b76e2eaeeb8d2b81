import { Type } from 'typebox'

export const SessionIdParams = Type.Object({
  // Any id is looked up; an unknown one is a 404, never a 400 (contract).
  id: Type.String({ maxLength: 1024 })
})

export const SessionState = Type.Union([Type.Literal('pending'), Type.Literal('streaming')])

const sessionFields = {
  sessionId: Type.String(),
  userId: Type.String(),
  tickers: Type.Array(Type.String()),
  createdAt: Type.String({ description: 'ISO 8601 UTC' }),
  expiresAt: Type.String({ description: 'ISO 8601 UTC' })
}

export const SessionBody = Type.Object({ ...sessionFields, state: SessionState })

export const RegisteredSessionBody = Type.Object({
  ...sessionFields,
  streamUrl: Type.String(),
  evicted: Type.Array(Type.String())
})

export const USER_ID_PATTERN = '^[A-Za-z0-9_.@:-]{1,128}$'

export const RegisterBody = Type.Object({
  userId: Type.String({ minLength: 1, maxLength: 128, pattern: USER_ID_PATTERN }),
  tickers: Type.Array(Type.String(), { minItems: 1 })
}, { additionalProperties: false })
