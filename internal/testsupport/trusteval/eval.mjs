// Judges one trust policy against a batch of AssumeRoleWithWebIdentity
// requests with @cloud-copilot/iam-simulate, an IAM simulator the product
// does not share. Reads {policy, role, account, requests: [{principal,
// context}]} as JSON on stdin; writes one {decision, ignored, error} per
// request as a JSON array on stdout.
import { runSimulation } from '@cloud-copilot/iam-simulate'

let input = ''
for await (const chunk of process.stdin) input += chunk
const { policy, role, account, requests } = JSON.parse(input)

const out = []
for (const req of requests) {
  const result = await runSimulation(
    {
      request: {
        principal: req.principal,
        action: 'sts:AssumeRoleWithWebIdentity',
        resource: { resource: role, accountId: account },
        contextVariables: req.context
      },
      identityPolicies: [],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: policy
    },
    {}
  )
  if (result.resultType === 'error') {
    out.push({ error: JSON.stringify(result.errors) })
  } else if (result.resultType === 'single') {
    out.push({ decision: result.overallResult, ignored: result.result.ignoredContextKeys ?? [] })
  } else {
    out.push({ error: 'unexpected result type ' + result.resultType })
  }
}
process.stdout.write(JSON.stringify(out))
