// A row of a conversation list; refetched by id alone through Query.node.
import { graphql } from "react-relay";

export const conversationRow = graphql`
  fragment ConversationRow_conversation on Conversation
  @refetchable(queryName: "ConversationRowRefetchQuery") {
    id
    title
    updatedAt
    version
    pinned
    projectId
    lastMessage {
      id
      role
      content
    }
    project {
      id
      name
    }
  }
`;
