import { Type } from 'typebox'

export const SessionIdParams = Type.Object({
  // Any id is looked up; an unknown one is a 404, never a 400 (contract).
  id: Type.String({ maxLength: 4096 })
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

const UserId = Type.String({ minLength: 1, maxLength: 128, pattern: USER_ID_PATTERN })
const Tickers = Type.Array(Type.String(), { minItems: 1 })

/** Open mode: the body says who the user is. */
export const RegisterBody = Type.Object({ userId: UserId, tickers: Tickers }, { additionalProperties: false })

/** Auth mode: the token says who the user is; a `userId` may repeat it (a different one is a 403). */
export const AuthenticatedRegisterBody = Type.Object({ userId: Type.Optional(UserId), tickers: Tickers }, { additionalProperties: false })
